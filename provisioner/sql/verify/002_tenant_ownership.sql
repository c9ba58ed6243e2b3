-- Every object in a tenant's schema is owned by that tenant's owner role, and a tenant's roles
-- own nothing outside it: an object's owner holds every privilege on it and can grant them.
-- Schema and owner names come from catalog-cache lookups per row, not joins (stale statistics
-- right after a bulk apply must not pick a quadratic plan).
with objects as (
    select 'pg_namespace'::regclass as classid, n.oid, n.oid as nsp, n.nspowner as owner from pg_namespace n
    union all
    -- indexes and TOAST tables follow their table
    select 'pg_class'::regclass, c.oid, c.relnamespace, c.relowner from pg_class c where c.relkind not in ('i', 'I', 't')
    union all
    select 'pg_proc'::regclass, p.oid, p.pronamespace, p.proowner from pg_proc p
    union all
    -- row and array types follow their relation or element
    select 'pg_type'::regclass, t.oid, t.typnamespace, t.typowner from pg_type t
    where t.typrelid = 0 and t.typcategory <> 'A'
    union all
    select 'pg_collation'::regclass, c.oid, c.collnamespace, c.collowner from pg_collation c
    union all
    select 'pg_conversion'::regclass, c.oid, c.connamespace, c.conowner from pg_conversion c
    union all
    select 'pg_operator'::regclass, o.oid, o.oprnamespace, o.oprowner from pg_operator o
    union all
    select 'pg_opfamily'::regclass, f.oid, f.opfnamespace, f.opfowner from pg_opfamily f
    union all
    select 'pg_opclass'::regclass, c.oid, c.opcnamespace, c.opcowner from pg_opclass c
    union all
    select 'pg_ts_config'::regclass, c.oid, c.cfgnamespace, c.cfgowner from pg_ts_config c
    union all
    select 'pg_ts_dict'::regclass, d.oid, d.dictnamespace, d.dictowner from pg_ts_dict d
    union all
    select 'pg_statistic_ext'::regclass, s.oid, s.stxnamespace, s.stxowner from pg_statistic_ext s
),
named as (
    select o.classid, o.oid, o.nsp::regnamespace::text as nspname, o.owner::regrole::text as owner_name
    from objects o
),
suspect as (
    -- Cheap string tests first; regular expressions only on the few rows that fail them.
    select n.*
    from named n
    where (starts_with(n.nspname, 't_') and n.owner_name <> n.nspname || '_owner')
       or (starts_with(n.owner_name, 't_') and n.nspname <> left(n.owner_name, 14))
),
judged as (
    select s.classid, s.oid, s.owner_name,
           substring(s.nspname from '^t_([a-z0-9]{12})$') as schema_tenant,
           substring(s.owner_name from '^t_([a-z0-9]{12})_(?:owner|app|ro)$') as owner_tenant
    from suspect s
)
select 'tenant_ownership' as "check",
       'error' as level,
       pg_describe_object(j.classid, j.oid, 0) as object,
       case when j.schema_tenant is not null
            then 'owned by ' || j.owner_name || ', not by the tenant''s owner role t_' || j.schema_tenant || '_owner'
            else 'owned by ' || j.owner_name || ' of tenant ' || j.owner_tenant
                 || ', outside its schema t_' || j.owner_tenant end as detail,
       'alter ' || pg_describe_object(j.classid, j.oid, 0) || ' owner to '
           || coalesce('t_' || j.schema_tenant || '_owner', 'its rightful owner') as remediation
from judged j
where (j.schema_tenant is not null and j.owner_name <> 't_' || j.schema_tenant || '_owner')
   or (j.owner_tenant is not null and j.schema_tenant is distinct from j.owner_tenant)
order by 3;
