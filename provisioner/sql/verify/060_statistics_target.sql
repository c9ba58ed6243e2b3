-- No statistics oracle: the planner reads column statistics under row level security for
-- leakproof operators (text and uuid equality), so a tenant's or partner's EXPLAIN on a table
-- it may SELECT estimates other tenants' row counts and value frequencies from them. Every
-- column of such a platform table, and of each of its partitions, keeps statistics target 0
-- (the default, -1, means ANALYZE collects them).
with recursive readable as (
    select c.oid
    from pg_class c
    where c.relnamespace = 'platform'::regnamespace and c.relkind in ('r', 'p') and not c.relispartition
      and (has_table_privilege(%(tenant_app)s, c.oid, 'select')
           or has_table_privilege(%(tenant_read)s, c.oid, 'select')
           or has_table_privilege(%(partner_app)s, c.oid, 'select'))
    union
    select i.inhrelid
    from pg_inherits i
    join readable r on r.oid = i.inhparent
)
select 'statistics_target' as "check", 'error' as level,
       'column ' || r.oid::regclass::text || '.' || quote_ident(a.attname) as object,
       'statistics target ' || a.attstattarget
           || ': ANALYZE keeps statistics that a tenant''s EXPLAIN reads past row level security' as detail,
       'alter table only ' || r.oid::regclass::text || ' alter column ' || quote_ident(a.attname)
           || ' set statistics 0 (then provision tenants apply clears what was collected)' as remediation
from readable r
-- Each table's columns read through the index (the ORDER BY keeps the subquery apart): joined,
-- the planner, misjudging how few tables are readable, hashed every column of the database.
cross join lateral (
    select a.attname, a.attstattarget
    from pg_attribute a
    where a.attrelid = r.oid and a.attnum > 0 and not a.attisdropped and a.attstattarget <> 0
    order by a.attnum
) a
order by 3;
