-- A view without security_invoker reads its tables with its owner's rights and skips the
-- caller's row level security; a materialized view is a copy made with its owner's rights.
-- None may be selectable by a tenant-side role (a tenant's own view in its own schema: warn).
with selectable as (
    select c.oid, c.relkind, c.relowner, n.nspname,
           string_agg(distinct coalesce(g.rolname, 'PUBLIC'), ', ') as readers,
           bool_and(coalesce(g.rolname ~ ('^t_' || substr(n.nspname, 3) || '_(owner|app|ro)$'), false))
               as own_tenant_only
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    cross join lateral aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a
    left join pg_roles g on g.oid = a.grantee
    where c.relkind in ('v', 'm')
      and n.nspname not in ('pg_catalog', 'information_schema')
      and lower(a.privilege_type) = 'select'
      and (a.grantee = 0 or g.rolname ~ '^[tp]_' or g.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s))
      and (c.relkind = 'm'
           or not coalesce((select o.option_value::boolean from pg_options_to_table(c.reloptions) o
                            where o.option_name = 'security_invoker'), false))
    group by c.oid, c.relkind, c.relowner, n.nspname
)
select 'view_security_invoker' as "check",
       case when s.nspname ~ '^t_[a-z0-9]{12}$' and s.own_tenant_only then 'warn' else 'error' end as level,
       case s.relkind when 'm' then 'materialized view ' else 'view ' end || s.oid::regclass::text as object,
       case s.relkind when 'm' then 'a copy made with the rights of ' else 'runs with the rights of ' end
           || s.relowner::regrole::text || ', not the reader''s, and is selectable by ' || s.readers as detail,
       case s.relkind when 'm' then 'revoke select on ' || s.oid::regclass::text || ' from ' || s.readers
            else 'alter view ' || s.oid::regclass::text || ' set (security_invoker = true)' end as remediation
from selectable s
order by 3;
