-- The control plane is owned by the NOLOGIN platform owner: a table owned by a login role (the
-- master, an app role) is one ALTER TABLE ... NO FORCE ROW LEVEL SECURITY away from open.
with recursive platform_rel as (
    select c.oid
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'platform' and c.relkind not in ('i', 'I', 't')
    union
    select i.inhrelid
    from pg_inherits i
    join platform_rel p on p.oid = i.inhparent
),
objects as (
    select 'schema platform' as object, 'schema platform' as alter_what, n.nspowner as owner
    from pg_namespace n
    where n.nspname = 'platform'
    union all
    select case c.relkind when 'S' then 'sequence ' when 'v' then 'view ' else 'table ' end || c.oid::regclass::text,
           case c.relkind when 'S' then 'sequence ' when 'v' then 'view ' else 'table ' end || c.oid::regclass::text,
           c.relowner
    from platform_rel p
    join pg_class c on c.oid = p.oid
    union all
    select 'function ' || f.oid::regprocedure::text, 'function ' || f.oid::regprocedure::text, f.proowner
    from pg_proc f
    join pg_namespace n on n.oid = f.pronamespace
    where n.nspname = 'platform'
    union all
    select 'type ' || t.oid::regtype::text, 'type ' || t.oid::regtype::text, t.typowner
    from pg_type t
    join pg_namespace n on n.oid = t.typnamespace
    where n.nspname = 'platform' and t.typrelid = 0 and t.typcategory <> 'A'
)
select 'platform_ownership' as "check", 'error' as level,
       o.object,
       'owned by ' || o.owner::regrole::text || ', not by ' || quote_ident(%(owner)s) as detail,
       'alter ' || o.alter_what || ' owner to ' || quote_ident(%(owner)s) as remediation
from objects o
where o.owner::regrole::text <> quote_ident(%(owner)s)
order by 3;
