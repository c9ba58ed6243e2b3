-- A table with row level security on but no policy at all: nobody but a BYPASSRLS role sees a
-- row. Not a leak, but the sign of policies dropped by hand (the next step is usually turning
-- RLS off "to make it work").
select 'rls_no_policy' as "check",
       'warn' as level,
       'table ' || c.oid::regclass::text as object,
       'row level security is on but the table has no policy'
           || case when c.relispartition then ' (a partition: direct access finds no policy)' else '' end
           as detail,
       'provision tenants apply (re-creates the platform policies), or create the missing policies' as remediation
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
where c.relrowsecurity
  and c.relkind in ('r', 'p')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and not exists (select 1 from pg_policy p where p.polrelid = c.oid)
order by 3;
