-- Audit partitions never run out: the last monthly partition of platform.audit_events reaches
-- at least 30 days past now, and a DEFAULT partition catches a row whose month has none (the
-- maintenance job, platform.audit_maintain on pg_cron, creates months ahead and drains it).
with bound as (
    select c.oid, c.relname, pg_get_expr(c.relpartbound, c.oid) as expr
    from pg_inherits i
    join pg_class c on c.oid = i.inhrelid
    where i.inhparent = to_regclass('platform.audit_events')
),
ranged as (
    select max(substring(b.expr from 'TO \(''([^'']+)''\)')::timestamptz) as last_end
    from bound b
    where b.expr <> 'DEFAULT'
)
select 'audit_partitions_ahead' as "check",
       'error' as level,
       'table platform.audit_events' as object,
       coalesce('its monthly partitions end at ' || r.last_end::text
                || ', within 30 days: inserts after that fall into the DEFAULT partition or fail',
                'it has no monthly partition at all') as detail,
       'select * from platform.audit_maintain(); and check the maintenance job: '
           || 'select * from cron.job_run_details order by start_time desc limit 5' as remediation
from ranged r
where to_regclass('platform.audit_events') is not null
  and (r.last_end is null or r.last_end < now() + interval '30 days')
union all
select 'audit_partitions_ahead', 'error', 'table platform.audit_events',
       'no DEFAULT partition: an insert in a month without a partition fails and the audit event is lost',
       'create table platform.audit_events_default partition of platform.audit_events default'
where to_regclass('platform.audit_events') is not null
  and not exists (select from bound b where b.expr = 'DEFAULT')
order by 3, 4;
