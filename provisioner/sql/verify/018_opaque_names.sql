-- pg_namespace and pg_roles are readable by every role: names in the t_ and p_ namespaces are
-- opaque ids, and no schema or role is named after a tenant's or partner's slug.
with slug as (
    select t.slug as name, 'tenant' as kind from platform.tenants t
    union
    select p.slug, 'partner' from platform.partners p
),
slug_name as (
    select name, kind from slug
    union
    select replace(name, '-', '_'), kind from slug
)
select 'opaque_names' as "check", 'error' as level,
       'schema ' || quote_ident(n.nspname) as object,
       'a schema in the tenant namespace whose name is not t_ + a 12-character opaque id' as detail,
       'rename or drop the schema; tenant schemas come only from provision tenants add' as remediation
from pg_namespace n
where n.nspname ~ '^[tp]_' and n.nspname !~ '^t_[a-z0-9]{12}$'
union all
select 'opaque_names', 'error',
       'role ' || quote_ident(r.rolname),
       'a role in the tenant namespace whose name is not t_<id>_owner|app|app2|ro or p_<id>_app|app2',
       'rename or drop the role; tenant roles come only from provision tenants add'
from pg_roles r
where r.rolname ~ '^[tp]_' and r.rolname !~ '^(t_[a-z0-9]{12}_(owner|app|app2|ro)|p_[a-z0-9]{12}_app2?)$'
union all
-- One catalog-cache lookup per slug (to_regnamespace, to_regrole), not a join: see 001.
select 'opaque_names', 'error',
       'schema ' || quote_ident(s.name),
       'named after a ' || s.kind || '''s slug: display names are visible to every role in pg_namespace',
       'rename the schema to an opaque id'
from slug_name s
where to_regnamespace(quote_ident(s.name)) is not null
union all
select 'opaque_names', 'error',
       'role ' || quote_ident(s.name),
       'named after a ' || s.kind || '''s slug: display names are visible to every role in pg_roles',
       'rename the role to an opaque id'
from slug_name s
where to_regrole(quote_ident(s.name)) is not null
order by 3;
