-- A tenant's or partner's roles carry exactly the role defaults the templates set (besides
-- search_path, which 024 judges): the tier's statement_timeout, idle_in_transaction_session_timeout,
-- lock_timeout and work_mem on the login role, nothing on the read-only role, and no
-- database-specific override. Any role may ALTER ROLE itself SET ...: an entry the templates do
-- not set is a tenant's change (a raised work_mem, a timeout switched off).
with bound_role as (
    select r.oid, r.rolname,
           case when starts_with(r.rolname, 'p_') then 'partner'
                when substr(r.rolname, 15) = '_app' then t.plan end as tier
    from pg_roles r
    left join platform.tenants t on starts_with(r.rolname, 't_') and t.id = substr(r.rolname, 3, 12)
    where (starts_with(r.rolname, 't_') and substr(r.rolname, 15) in ('_app', '_ro'))
       or (starts_with(r.rolname, 'p_') and substr(r.rolname, 15) = '_app')
),
wanted as (
    select b.oid, s.key || '=' || s.value as entry
    from bound_role b
    cross join lateral jsonb_each_text(coalesce(%(limits)s::jsonb -> b.tier -> 'settings', '{}')) s
),
actual as (
    select b.oid, d.setdatabase, c as entry
    from bound_role b
    join pg_db_role_setting d on d.setrole = b.oid
    cross join lateral unnest(d.setconfig) c
    where c !~ '^search_path='
)
select 'role_settings' as "check", 'error' as level,
       'role ' || quote_ident(b.rolname) as object,
       case when a.setdatabase <> 0
            then 'a database-specific override ' || a.entry || ' in database ' || coalesce(db.datname, '?')
            else 'a role default the templates do not set: ' || a.entry end as detail,
       'alter role ' || quote_ident(b.rolname)
           || coalesce(' in database ' || quote_ident(db.datname), '')
           || ' reset ' || split_part(a.entry, '=', 1) || ', then provision tenants apply' as remediation
from actual a
join bound_role b on b.oid = a.oid
left join pg_database db on db.oid = nullif(a.setdatabase, 0)
where a.setdatabase <> 0
   or not exists (select 1 from wanted w where w.oid = a.oid and w.entry = a.entry)
union all
select 'role_settings', 'error',
       'role ' || quote_ident(b.rolname),
       'the role default ' || w.entry || ' is missing',
       'provision tenants apply (sets the tier''s role defaults)'
from wanted w
join bound_role b on b.oid = w.oid
where not exists (select 1 from actual a where a.oid = w.oid and a.setdatabase = 0 and a.entry = w.entry)
order by 3, 4;
