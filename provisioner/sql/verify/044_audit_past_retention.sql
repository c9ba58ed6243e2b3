-- No audit event outlives its tenant's plan (platform.audit_retention_days, from the contract's
-- tiers) by more than two days: the schedule drops whole months daily and cleans the rest every
-- ten minutes, so rows past that slack mean the schedule is not running. One row per tenant.
-- The first bound on occurred_at prunes every partition younger than the shortest period.
select 'audit_past_retention' as "check",
       'error' as level,
       'audit events of tenant ' || a.tenant_id as object,
       count(*)::text || ' event(s) older than the ' || coalesce(t.plan, 'unknown') || ' plan''s '
           || platform.audit_retention_days(t.plan)::text || ' days (oldest ' || min(a.occurred_at)::text
           || ')' as detail,
       'provision retention run --stack <stack> --yes; and check the schedule: select * from '
           || 'cron.job_run_details order by start_time desc limit 5' as remediation
from platform.audit_events a
left join platform.tenants t on t.id = a.tenant_id
where a.occurred_at < now() - make_interval(days => (select min(platform.audit_retention_days(p.plan))
                                                     from platform.tenants p) + 2)
  and a.occurred_at < now() - make_interval(days => platform.audit_retention_days(t.plan) + 2)
group by a.tenant_id, t.plan
order by 3;
