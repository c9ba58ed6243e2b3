-- Login roles search only their own place: t_<id>_app, _app2 and _ro their schema then pg_temp,
-- p_<id>_app pg_catalog then pg_temp. A database-specific setting overrides the role's own.
-- One index probe of pg_db_role_setting per role, not a join: see 001.
with login_role as (
    select r.oid, r.rolname,
           case when starts_with(r.rolname, 't_') then left(r.rolname, 14) || ',pg_temp'
                else 'pg_catalog,pg_temp' end as wanted
    from pg_roles r
    -- by position, not by regular expression (see 001); malformed names are opaque_names' job
    where (starts_with(r.rolname, 't_') and substr(r.rolname, 15) in ('_app', '_app2', '_ro'))
       or (starts_with(r.rolname, 'p_') and substr(r.rolname, 15) in ('_app', '_app2'))
)
select 'role_search_path' as "check", 'warn' as level,
       'role ' || quote_ident(l.rolname) as object,
       coalesce('search_path is ' || s.search_path, 'search_path is not pinned')
           || ', not ' || replace(l.wanted, ',', ', ') as detail,
       'alter role ' || quote_ident(l.rolname) || ' set search_path = ' || replace(l.wanted, ',', ', ') as remediation
from login_role l
left join lateral (
    select substr(c, 13) as search_path
    from pg_db_role_setting d
    cross join lateral unnest(d.setconfig) c
    where d.setrole = l.oid
      and d.setdatabase in (0, (select db.oid from pg_database db where db.datname = current_database()))
      and c ~ '^search_path='
    order by d.setdatabase desc
    limit 1
) s on true
where coalesce(regexp_replace(s.search_path, '[\s"]', '', 'g'), '') <> l.wanted
order by 3;
