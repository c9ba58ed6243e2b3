-- Schema public: nothing for PUBLIC (CREATE was the default before PostgreSQL 15, and upgrades
-- keep old ACLs) and nothing for tenant-side roles, whose search_path never includes it.
select 'public_schema' as "check",
       'error' as level,
       'schema public' as object,
       a.privilege_type || ' held by ' || coalesce(g.rolname, 'PUBLIC')
           || case when lower(a.privilege_type) = 'create' then ': objects planted there run in other sessions'
                   else ': tenants reach objects outside their schema' end as detail,
       'revoke ' || a.privilege_type || ' on schema public from '
           || coalesce(quote_ident(g.rolname), 'public') as remediation
from pg_namespace n
cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
left join pg_roles g on g.oid = a.grantee
where n.nspname = 'public'
  and (a.grantee = 0 or g.rolname ~ '^[tp]_' or g.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s))
order by 4;
