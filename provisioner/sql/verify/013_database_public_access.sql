-- The database: no CONNECT, TEMPORARY or CREATE for PUBLIC (the default grants CONNECT and
-- TEMPORARY), and tenant-side roles get CONNECT only (TEMPORARY puts pg_temp ahead of their
-- search_path, CREATE makes schemas).
select 'database_public_access' as "check",
       'error' as level,
       'database ' || quote_ident(d.datname) as object,
       a.privilege_type || ' held by ' || coalesce(g.rolname, 'PUBLIC') as detail,
       'revoke ' || a.privilege_type || ' on database ' || quote_ident(d.datname) || ' from '
           || coalesce(quote_ident(g.rolname), 'public') as remediation
from pg_database d
cross join lateral aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) a
left join pg_roles g on g.oid = a.grantee
where d.datname = current_database()
  and (a.grantee = 0
       or ((g.rolname ~ '^[tp]_' or g.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s))
           and a.privilege_type <> 'CONNECT'))
order by 4;
