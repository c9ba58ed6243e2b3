-- A tenant's or partner's roles carry exactly the role defaults the templates set (besides
-- search_path, which 024 judges): the tier's statement_timeout, idle_in_transaction_session_timeout,
-- lock_timeout and work_mem on the login role, nothing on the read-only role, and no
-- database-specific override. Any role may ALTER ROLE itself SET ...: an entry the templates do
-- not set is a tenant's change (a raised work_mem, a timeout switched off).
-- Set-based over every bound role: the entries wanted and those present meet in one full join
-- (hashed whatever the planner guesses of the CTEs' sizes), not per role.
with bound_role as (
    select r.oid, r.rolname,
           case when starts_with(r.rolname, 'p_') then 'partner'
                when substr(r.rolname, 15) in ('_app', '_app2') then t.plan end as tier
    from pg_roles r
    left join platform.tenants t on starts_with(r.rolname, 't_') and t.id = substr(r.rolname, 3, 12)
    where (starts_with(r.rolname, 't_') and substr(r.rolname, 15) in ('_app', '_app2', '_ro'))
       or (starts_with(r.rolname, 'p_') and substr(r.rolname, 15) in ('_app', '_app2'))
),
wanted as (
    select b.oid, b.rolname, s.key || '=' || s.value as entry
    from bound_role b
    cross join lateral jsonb_each_text(coalesce(%(limits)s::jsonb -> b.tier -> 'settings', '{}')) s
),
-- Driven from pg_db_role_setting, each entry's role named by a catalog-cache lookup: joined to
-- the roles, the planner (stale statistics: it expects one bound role) probes the settings'
-- index by role for every role, and that index leads with the database: each probe reads it all.
actual as (
    select d.setrole as oid, d.rolname, d.setdatabase, c as entry
    from (select s.*, pg_get_userbyid(s.setrole) as rolname from pg_db_role_setting s) d
    cross join lateral unnest(d.setconfig) c
    where ((starts_with(d.rolname, 't_') and substr(d.rolname, 15) in ('_app', '_app2', '_ro'))
           or (starts_with(d.rolname, 'p_') and substr(d.rolname, 15) in ('_app', '_app2')))
      and c !~ '^search_path='
)
select 'role_settings' as "check", 'error' as level,
       'role ' || quote_ident(a.rolname) as object,
       'a database-specific override ' || a.entry || ' in database ' || coalesce(db.datname, '?') as detail,
       'alter role ' || quote_ident(a.rolname)
           || coalesce(' in database ' || quote_ident(db.datname), '')
           || ' reset ' || split_part(a.entry, '=', 1) || ', then provision tenants apply' as remediation
from actual a
left join pg_database db on db.oid = a.setdatabase
where a.setdatabase <> 0
union all
select 'role_settings', 'error',
       'role ' || quote_ident(coalesce(a.rolname, w.rolname)),
       case when w.oid is null then 'a role default the templates do not set: ' || a.entry
            else 'the role default ' || w.entry || ' is missing' end,
       case when w.oid is null
            then 'alter role ' || quote_ident(a.rolname) || ' reset ' || split_part(a.entry, '=', 1)
                || ', then provision tenants apply'
            else 'provision tenants apply (sets the tier''s role defaults)' end
from (select * from actual where setdatabase = 0) a
full join wanted w on w.oid = a.oid and w.entry = a.entry
where a.oid is null or w.oid is null
order by 3, 4;
