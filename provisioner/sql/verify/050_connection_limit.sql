-- Every tenant and partner login role has the connection limit of its plan tier (partner: the
-- partner limit), from contract/tiers.py as %(limits)s: without one, a single role can take
-- every connection of the cell, the master's included (it is no superuser: the reserved slots
-- do not help it).
with login_role as (
    select r.rolname, r.rolconnlimit,
           case when starts_with(r.rolname, 'p_') then 'partner' else t.plan end as tier
    from pg_roles r
    left join platform.tenants t on starts_with(r.rolname, 't_') and t.id = substr(r.rolname, 3, 12)
    -- by position, not by regular expression (see 001)
    where r.rolcanlogin
      and (starts_with(r.rolname, 't_') or starts_with(r.rolname, 'p_'))
      and substr(r.rolname, 15) in ('_app', '_app2')
),
judged as (
    select l.rolname, l.rolconnlimit, (%(limits)s::jsonb -> l.tier ->> 'connection_limit')::int as wanted
    from login_role l
)
select 'connection_limit' as "check", 'error' as level,
       'role ' || quote_ident(j.rolname) as object,
       case when j.rolconnlimit < 0 then 'no connection limit: one role can take every connection of the cell'
            else 'connection limit ' || j.rolconnlimit || ' is above its tier''s ' || j.wanted end as detail,
       'provision tenants apply (sets the tier''s limit), or alter role ' || quote_ident(j.rolname)
           || ' connection limit ' || coalesce(j.wanted::text, 'N') as remediation
from judged j
where j.rolconnlimit < 0 or j.rolconnlimit > coalesce(j.wanted, 0)
order by 3;
