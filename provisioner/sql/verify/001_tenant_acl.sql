-- "char" (quoted) is PostgreSQL's one-byte type, not char(1): the noqa marks below keep the quotes.
-- Any privilege on a tenant's objects held by a role that is not one of that tenant's own
-- (t_<id>_owner, _app, _ro), PUBLIC included: the schema, relations, columns, functions, types,
-- large objects, and default privileges (in the tenant's schema, set by its roles, or handing
-- a tenant's role objects created elsewhere).
-- Built for 1,000s of tenants (tens of thousands of ACL entries): names come from per-row
-- catalog-cache lookups (::regnamespace, ::regrole), not joins, because right after a bulk
-- apply the catalog statistics are stale and a join plan can go quadratic; every entry gets
-- cheap string tests only; regular expressions and display names are for the violations.
-- Each entry is judged before any grouping: grouping sorts every entry of every tenant, and
-- only the few foreign ones need their privileges gathered into one line.
-- An owner's own entries are left to tenant_ownership, which checks who the owner is.
with acl as (
    -- kind: n schema, r relation, c column, f function, T type, d default privileges, L large
    -- object. nsp: the t_<id> the object belongs to ('' for none).
    select 'n' as kind, n.nspname::text as nsp, n.oid as objoid, null::name as attname, null::"char" as objtype,  -- noqa: RF06
           a.grantee, a.privilege_type
    from pg_namespace n
    cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    where starts_with(n.nspname, 't_') and a.grantee <> n.nspowner
    union all
    select 'r', c.relnamespace::regnamespace::text, c.oid, null, c.relkind, a.grantee, a.privilege_type
    from pg_class c
    cross join lateral aclexplode(
        coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner))) a  -- noqa: RF06
    where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and a.grantee <> c.relowner
      and starts_with(c.relnamespace::regnamespace::text, 't_')
    union all
    select 'c', split_part(att.attrelid::regclass::text, '.', 1), att.attrelid, att.attname, null, a.grantee,
           a.privilege_type
    from pg_attribute att
    cross join lateral aclexplode(att.attacl) a
    where att.attacl is not null and att.attnum > 0 and not att.attisdropped
      and starts_with(att.attrelid::regclass::text, 't_')
    union all
    select 'f', p.pronamespace::regnamespace::text, p.oid, null, p.prokind, a.grantee, a.privilege_type
    from pg_proc p
    cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
    where a.grantee <> p.proowner and starts_with(p.pronamespace::regnamespace::text, 't_')
    union all
    -- Types: explicit grants only. PostgreSQL's default (USAGE for PUBLIC) is left alone: a type
    -- is unusable without USAGE on its schema, and its definition is in the public catalog anyway.
    select 'T', t.typnamespace::regnamespace::text, t.oid, null, null, a.grantee, a.privilege_type
    from pg_type t
    cross join lateral aclexplode(t.typacl) a
    where t.typacl is not null and a.grantee <> t.typowner and starts_with(t.typnamespace::regnamespace::text, 't_')
    union all
    -- Default privileges belong to a tenant when set in its schema or by one of its roles; an
    -- entry of no tenant must not name a tenant's role either.
    select 'd', case when starts_with(d.nspname, 't_') then d.nspname
                     when starts_with(d.rolname, 't_') then left(d.rolname, 14) else '' end,
           d.oid, null, d.defaclobjtype, d.grantee, d.privilege_type
    from (
        select x.oid, nullif(x.defaclnamespace, 0)::regnamespace::text as nspname,
               x.defaclrole::regrole::text as rolname, x.defaclobjtype, a.grantee, a.privilege_type
        from pg_default_acl x
        cross join lateral aclexplode(x.defaclacl) a
    ) d
    where starts_with(d.nspname, 't_') or starts_with(d.rolname, 't_')
       or (d.grantee <> 0 and starts_with(d.grantee::regrole::text, 't_'))
    union all
    select 'L', case when starts_with(l.lomowner::regrole::text, 't_') then left(l.lomowner::regrole::text, 14)
                     else '' end,
           l.oid, null, null, a.grantee, a.privilege_type
    from pg_largeobject_metadata l
    cross join lateral aclexplode(l.lomacl) a
    where a.grantee <> l.lomowner
      and (starts_with(l.lomowner::regrole::text, 't_') or (a.grantee <> 0 and starts_with(a.grantee::regrole::text, 't_')))
),
named as materialized (
    select a.*, case when a.grantee = 0 then 'PUBLIC' else a.grantee::regrole::text end as grantee_name
    from acl a
),
violation as (
    select f.kind, f.nsp, f.objoid, f.attname, f.objtype, f.grantee, f.grantee_name,
           string_agg(f.privilege_type, ', ' order by f.privilege_type) as privilege_type
    from named f
    -- CASE fixes the order: the planner sorts plain AND-ed quals by cost, not as written.
    where case when f.grantee_name in (f.nsp || '_owner', f.nsp || '_app', f.nsp || '_ro') then false
               when f.nsp = '' then f.grantee_name ~ '^t_[a-z0-9]{12}_(owner|app|ro)$'
               else f.nsp ~ '^t_[a-z0-9]{12}$' end
    group by f.kind, f.nsp, f.objoid, f.attname, f.objtype, f.grantee, f.grantee_name
),
described as (
    select v.*,
           case v.kind
               when 'n' then 'schema ' || quote_ident(v.nsp)
               when 'r' then case v.objtype when 'S' then 'sequence ' when 'v' then 'view '
                                            when 'm' then 'materialized view ' when 'f' then 'foreign table '
                                            else 'table ' end || v.objoid::regclass::text
               when 'c' then 'column ' || v.objoid::regclass::text || '.' || quote_ident(v.attname)
               when 'f' then case v.objtype when 'p' then 'procedure ' else 'function ' end
                             || v.objoid::regprocedure::text
               when 'T' then 'type ' || v.objoid::regtype::text
               when 'L' then 'large object ' || v.objoid::text
               else (select 'default privileges for role ' || x.defaclrole::regrole::text
                            || coalesce(' in schema ' || nullif(x.defaclnamespace, 0)::regnamespace::text, '')
                            || ' on ' || case x.defaclobjtype when 'r' then 'tables' when 'S' then 'sequences'
                                                             when 'f' then 'functions' when 'T' then 'types'
                                                             else 'schemas' end
                     from pg_default_acl x where x.oid = v.objoid)
           end as object,
           case v.kind
               when 'n' then 'on schema ' || quote_ident(v.nsp)
               when 'r' then case v.objtype when 'S' then 'on sequence ' else 'on table ' end
                             || v.objoid::regclass::text
               when 'c' then '(' || quote_ident(v.attname) || ') on table ' || v.objoid::regclass::text
               when 'f' then case v.objtype when 'p' then 'on procedure ' else 'on function ' end
                             || v.objoid::regprocedure::text
               when 'T' then 'on type ' || v.objoid::regtype::text
               when 'L' then 'on large object ' || v.objoid::text
           end as revoke_on
    from violation v
)
select 'tenant_acl' as "check",
       'error' as level,
       d.object,
       d.privilege_type || ' held by ' || d.grantee_name
           || case when d.nsp = '' then ', a role of a tenant, on an object of no tenant'
                   else ', which is not a role of tenant ' || substr(d.nsp, 3) end as detail,
       case when d.kind = 'd' then 'alter ' || d.object || ' revoke ' || d.privilege_type || ' from '
            else 'revoke ' || d.privilege_type || ' ' || d.revoke_on || ' from ' end
           || case when d.grantee = 0 then 'public' else d.grantee_name end as remediation
from described d
order by d.object, d.grantee_name, d.privilege_type;
