-- dblink and postgres_fdw open connections with someone else's credentials: no USAGE on a
-- foreign data wrapper or server, no user mapping, and no dblink / postgres_fdw function for
-- PUBLIC or tenant-side roles.
with side as (
    select r.oid, r.rolname from pg_roles r
    where r.rolname ~ '^[tp]_' or r.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s)
)
select 'foreign_data_access' as "check", 'error' as level,
       'foreign data wrapper ' || quote_ident(w.fdwname) as object,
       a.privilege_type || ' held by ' || coalesce(s.rolname, 'PUBLIC') as detail,
       'revoke usage on foreign data wrapper ' || quote_ident(w.fdwname) || ' from '
           || coalesce(quote_ident(s.rolname), 'public') as remediation
from pg_foreign_data_wrapper w
cross join lateral aclexplode(coalesce(w.fdwacl, acldefault('F', w.fdwowner))) a
left join side s on s.oid = a.grantee
where a.grantee = 0 or s.oid is not null
union all
select 'foreign_data_access', 'error',
       'server ' || quote_ident(f.srvname),
       a.privilege_type || ' held by ' || coalesce(s.rolname, 'PUBLIC'),
       'revoke usage on foreign server ' || quote_ident(f.srvname) || ' from '
           || coalesce(quote_ident(s.rolname), 'public')
from pg_foreign_server f
cross join lateral aclexplode(coalesce(f.srvacl, acldefault('S', f.srvowner))) a
left join side s on s.oid = a.grantee
where a.grantee = 0 or s.oid is not null
union all
select 'foreign_data_access', 'error',
       'user mapping for ' || coalesce(s.rolname, 'PUBLIC') || ' server ' || quote_ident(m.srvname),
       'a stored login a tenant-side role can use through the server',
       'drop user mapping for ' || coalesce(quote_ident(s.rolname), 'public') || ' server ' || quote_ident(m.srvname)
from pg_user_mappings m
left join side s on s.oid = m.umuser
where m.umuser = 0 or s.oid is not null
union all
select 'foreign_data_access', 'error',
       'function ' || p.oid::regprocedure::text,
       'EXECUTE held by ' || coalesce(s.rolname, 'PUBLIC') || ' on a dblink / postgres_fdw function',
       'revoke execute on function ' || p.oid::regprocedure::text || ' from '
           || coalesce(quote_ident(s.rolname), 'public')
from pg_proc p
cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
left join side s on s.oid = a.grantee
where (p.probin ~ '(dblink|postgres_fdw)' or p.proname ~ '^(dblink|postgres_fdw)')
  and a.privilege_type = 'EXECUTE' and (a.grantee = 0 or s.oid is not null)
order by 3, 4;
