-- Shared rows hold only what the platform writes (R__shared_rows, V030): the database dates
-- audit events, cost entries and worker runs (a missing or disabled trigger lets a tenant
-- backdate them or fill future partitions); audit events are append-only (UPDATE or DELETE
-- granted to anyone but the owner); tenants and partners update worker runs only in status
-- and finished_at (a table-wide UPDATE, or a column grant beyond those, to anyone but the
-- owner and the operator lets them rewrite times and owners); the constraints on amounts, currencies and run references exist, and a NOT
-- VALID one (rows written before it that break it) is named (warn).
with expected_trigger(rel, tgname) as (
    values ('platform.audit_events', 'stamped_now'), ('platform.cost_entries', 'stamped_now'),
           ('platform.worker_runs', 'stamped_now'), ('platform.audit_events', 'append_only')
),
expected_constraint(rel, conname) as (
    values ('platform.cost_entries', 'cost_entries_amount_check'),
           ('platform.cost_entries', 'cost_entries_currency_check'),
           ('platform.cost_entries', 'cost_entries_worker_run_fkey'),
           ('platform.worker_runs', 'worker_runs_finished_check')
),
present as (
    select e.rel, e.tgname, t.tgenabled
    from expected_trigger e
    left join pg_trigger t on t.tgrelid = to_regclass(e.rel) and t.tgname = e.tgname and not t.tgisinternal
    where to_regclass(e.rel) is not null
),
table_grants as (
    select c.oid::regclass::text as rel, a.grantee, a.privilege_type
    from pg_class c
    cross join lateral aclexplode(c.relacl) a
    where c.oid in (to_regclass('platform.worker_runs'), to_regclass('platform.audit_events'))
),
column_grants as (
    select att.attname, a.grantee, a.privilege_type
    from pg_attribute att
    cross join lateral aclexplode(att.attacl) a
    where att.attrelid = to_regclass('platform.worker_runs') and att.attnum > 0 and not att.attisdropped
)
select 'shared_row_integrity' as "check", 'error' as level,
       'trigger ' || p.tgname || ' on ' || p.rel as object,
       case when p.tgenabled is null then 'missing' else 'disabled' end
           || ': tenants could write rows dated as they like, or rewrite the audit trail' as detail,
       'provision tenants apply (R__shared_rows recreates it)' as remediation
from present p
where p.tgenabled is null or p.tgenabled = 'D'
union all
select 'shared_row_integrity', 'error', 'table ' || g.rel,
       g.privilege_type || ' held by ' || r.rolname
           || case when g.rel = 'platform.audit_events' then ': audit events are append-only'
                   else ': tenants update worker runs only in status and finished_at' end,
       'revoke ' || g.privilege_type || ' on table ' || g.rel || ' from ' || quote_ident(r.rolname)
from table_grants g
join pg_roles r on r.oid = g.grantee
where r.rolname <> %(owner)s
  and ((g.rel = 'platform.audit_events' and g.privilege_type in ('UPDATE', 'DELETE'))
       or (g.rel = 'platform.worker_runs' and g.privilege_type = 'UPDATE' and r.rolname <> %(operator)s))
union all
select 'shared_row_integrity', 'error', 'column platform.worker_runs.' || g.attname,
       'UPDATE held by ' || r.rolname || ': the platform never changes this column of a run',
       'revoke update (' || quote_ident(g.attname) || ') on platform.worker_runs from ' || quote_ident(r.rolname)
from column_grants g
join pg_roles r on r.oid = g.grantee
where g.privilege_type = 'UPDATE' and r.rolname not in (%(owner)s, %(operator)s) and g.attname not in ('status', 'finished_at')
union all
select 'shared_row_integrity', case when c.oid is null then 'error' else 'warn' end,
       'constraint ' || e.conname || ' on ' || e.rel,
       case when c.oid is null then 'missing: the database accepts amounts, currencies or run references '
                                    || 'the platform never writes'
            else 'NOT VALID: rows written before it break it' end,
       case when c.oid is null then 'provision tenants apply, or re-create the constraint'
            else 'fix the rows it names, then: alter table ' || e.rel || ' validate constraint ' || e.conname end
from expected_constraint e
left join pg_constraint c on c.conrelid = to_regclass(e.rel) and c.conname = e.conname
where to_regclass(e.rel) is not null and (c.oid is null or not c.convalidated)
order by 3, 4;
