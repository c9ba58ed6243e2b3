-- Row level security ENABLED and FORCED on every platform table and on every partition or
-- child of one, wherever it lives: a partition reached directly does not use its parent's
-- policies, and without FORCE the table's owner reads every row.
with recursive platform_rel as (
    select c.oid
    from pg_class c
    join pg_namespace n on n.oid = c.relnamespace
    where n.nspname = 'platform' and c.relkind in ('r', 'p')
    union
    select i.inhrelid
    from pg_inherits i
    join platform_rel p on p.oid = i.inhparent
)
select 'rls_not_forced' as "check",
       'error' as level,
       'table ' || c.oid::regclass::text as object,
       case when not c.relrowsecurity then 'row level security is not enabled: every grantee reads every row'
            else 'row level security is enabled but not forced: the owner ' || c.relowner::regrole::text
                 || ' reads and writes every row' end
           || case when c.relispartition then ' (a partition)' else '' end as detail,
       case when not c.relrowsecurity
            then 'alter table ' || c.oid::regclass::text || ' enable row level security; '
            else '' end
           || 'alter table ' || c.oid::regclass::text || ' force row level security' as remediation
from platform_rel p
join pg_class c on c.oid = p.oid
where c.relkind in ('r', 'p') and not (c.relrowsecurity and c.relforcerowsecurity)
order by 3;
