-- Every foreign key in the platform schema and in tenant schemas has a covering index (an
-- index whose leading columns are the key's columns), modelled on Supabase splinter's lint
-- 0001 (unindexed_foreign_keys). Without one, a delete or purge of the referenced row scans the
-- whole referencing table for each row, under lock.
with fk as (
    select ct.conrelid, ct.conname, ct.conkey::int2[] as cols
    from pg_constraint ct
    join pg_class cl on cl.oid = ct.conrelid
    join pg_namespace n on n.oid = cl.relnamespace
    where ct.contype = 'f'
      and (n.nspname = 'platform' or n.nspname ~ '^t_[a-z0-9]{12}$')
),
idx as (
    select x.indrelid, string_to_array(x.indkey::text, ' ')::int2[] as cols
    from pg_index x
    where x.indpred is null
)
select 'unindexed_foreign_keys' as "check",
       'warn' as level,
       'foreign key ' || quote_ident(f.conname) || ' on ' || f.conrelid::regclass::text as object,
       'no index leads with (' || array_to_string(array(
           select quote_ident(a.attname) from unnest(f.cols) with ordinality u(n, o)
           join pg_attribute a on a.attrelid = f.conrelid and a.attnum = u.n order by u.o), ', ')
           || '): a delete of a referenced row scans ' || f.conrelid::regclass::text as detail,
       'create index on ' || f.conrelid::regclass::text || ' (' || array_to_string(array(
           select quote_ident(a.attname) from unnest(f.cols) with ordinality u(n, o)
           join pg_attribute a on a.attrelid = f.conrelid and a.attnum = u.n order by u.o), ', ')
           || '), in a new V step' as remediation
from fk f
where not exists (
    select from idx i
    where i.indrelid = f.conrelid
      and cardinality(i.cols) >= cardinality(f.cols)
      and (i.cols)[1:cardinality(f.cols)] @> f.cols
      and (i.cols)[1:cardinality(f.cols)] <@ f.cols
)
order by 3;
