-- Grants on the control plane: nothing for PUBLIC; no grant at all on a partition or
-- inheritance child (reached directly, it answers with its own grants); no TRUNCATE (ignores
-- row level security), REFERENCES (foreign-key probes past RLS) or TRIGGER for anyone but the
-- owner; CREATE in schema platform for the owner only. Grants go to the group roles the
-- policies name, not to one tenant's or partner's role (warn).
with recursive platform_rel as (
    select c.oid, false as child
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'platform' and c.relkind not in ('i', 'I', 't')
    union
    select i.inhrelid, true
    from pg_inherits i
    join platform_rel p on p.oid = i.inhparent
),
grants as (
    select 'schema platform' as object, 'schema' as kind, false as child, n.nspowner as owner,
           a.grantee, a.privilege_type, 'on schema platform' as revoke_on
    from pg_namespace n
    cross join lateral aclexplode(coalesce(n.nspacl, acldefault('n', n.nspowner))) a
    where n.nspname = 'platform'
    union all
    select case c.relkind when 'S' then 'sequence ' when 'v' then 'view ' else 'table ' end || c.oid::regclass::text,
           'relation', p.child, c.relowner, a.grantee, a.privilege_type,
           case c.relkind when 'S' then 'on sequence ' else 'on table ' end || c.oid::regclass::text
    from (select oid, bool_or(child) as child from platform_rel group by oid) p
    join pg_class c on c.oid = p.oid
    cross join lateral aclexplode(
        coalesce(c.relacl, acldefault((case c.relkind when 'S' then 's' else 'r' end)::"char", c.relowner))) a  -- noqa: RF06
    union all
    select 'function ' || f.oid::regprocedure::text, 'function', false, f.proowner, a.grantee, a.privilege_type,
           'on function ' || f.oid::regprocedure::text
    from pg_proc f
    join pg_namespace n on n.oid = f.pronamespace
    cross join lateral aclexplode(coalesce(f.proacl, acldefault('f', f.proowner))) a
    where n.nspname = 'platform'
),
judged as (
    select g.*, coalesce(r.rolname, 'PUBLIC') as grantee_name,
           case
               when g.grantee = g.owner then null
               when g.grantee = 0
               then 'error:PUBLIC holds ' || g.privilege_type
               when g.child
               then 'error:' || g.privilege_type || ' granted on a partition / child table: direct access bypasses '
                    || 'the parent''s grants'
               when g.privilege_type = 'TRUNCATE'
               then 'error:TRUNCATE ignores row level security'
               when g.privilege_type = 'REFERENCES'
               then 'error:REFERENCES lets foreign keys probe rows past row level security'
               when g.privilege_type = 'TRIGGER'
               then 'error:TRIGGER lets its holder run code on every row written'
               when g.kind = 'schema' and lower(g.privilege_type) = 'create'
               then 'error:it lets its holder plant objects in schema platform that the platform resolves'
               when r.rolname ~ '^[tp]_'
               then 'warn:' || g.privilege_type || ' granted to one tenant''s or partner''s role, not to its group'
           end as problem
    from grants g
    left join pg_roles r on r.oid = g.grantee
)
select 'platform_acl' as "check",
       split_part(j.problem, ':', 1) as level,
       j.object,
       j.privilege_type || ' held by ' || j.grantee_name || ': '
           || substr(j.problem, strpos(j.problem, ':') + 1) as detail,
       'revoke ' || j.privilege_type || ' ' || j.revoke_on || ' from '
           || case when j.grantee = 0 then 'public' else quote_ident(j.grantee_name) end as remediation
from judged j
where j.problem is not null
order by 3, 4;
