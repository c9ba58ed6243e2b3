-- The catalog and the control plane agree: every active tenant has its schema and three roles,
-- every partner its console role, and no t_ schema or role, or p_ role, exists without its row
-- in platform.tenants / platform.partners (an orphan's data has no owner on record, and a
-- tenant created later with a recycled id would inherit it).
-- Catalog lookups by name (to_regnamespace, to_regrole) and primary-key probes, not joins: see 001.
select 'tenant_orphans' as "check", 'error' as level,
       'tenant ' || t.id as object,
       'active tenant without its schema t_' || t.id as detail,
       'provision tenants apply --stack <stack>' as remediation
from platform.tenants t
where t.status = 'active' and to_regnamespace('t_' || t.id) is null
union all
select 'tenant_orphans', 'error', 'tenant ' || t.id,
       'active tenant without its role t_' || t.id || '_' || v.suffix,
       'provision tenants apply --stack <stack>'
from platform.tenants t
cross join (values ('owner'), ('app'), ('app2'), ('ro')) v(suffix)
where t.status = 'active' and to_regrole('t_' || t.id || '_' || v.suffix) is null
union all
select 'tenant_orphans', 'error', 'partner ' || p.id,
       'active partner without its console role p_' || p.id || '_' || v.suffix,
       'provision tenants apply --stack <stack>'
from platform.partners p
cross join (values ('app'), ('app2')) v(suffix)
where p.status = 'active' and to_regrole('p_' || p.id || '_' || v.suffix) is null
union all
select 'tenant_orphans', 'error', 'schema ' || quote_ident(n.nspname),
       'no tenant ' || substr(n.nspname, 3) || ' in platform.tenants: an orphan schema',
       'find whose data it holds, then drop schema ' || quote_ident(n.nspname) || ' cascade'
from pg_namespace n
where n.nspname ~ '^t_[a-z0-9]{12}$'
  and not exists (select 1 from platform.tenants t where t.id = substr(n.nspname, 3))
union all
select 'tenant_orphans', 'error', 'role ' || quote_ident(r.rolname),
       'no ' || case left(r.rolname, 1) when 't' then 'tenant' else 'partner' end || ' '
           || substr(r.rolname, 3, 12) || ' on record: an orphan role',
       'reassign owned by ' || quote_ident(r.rolname) || ' to <owner>; drop role ' || quote_ident(r.rolname)
from pg_roles r
where (r.rolname ~ '^t_[a-z0-9]{12}_(owner|app|app2|ro)$'
       and not exists (select 1 from platform.tenants t where t.id = substr(r.rolname, 3, 12)))
   or (r.rolname ~ '^p_[a-z0-9]{12}_app2?$'
       and not exists (select 1 from platform.partners p where p.id = substr(r.rolname, 3, 12)))
order by 3, 4;
