-- A terminated partner's console role (and its rotation twin) cannot log in and holds no session.
select 'terminated_partner_login' as "check", 'error' as level,
       'role ' || r.rolname as object,
       'partner ' || p.id || ' is terminated (' || p.terminated_at::text || ') and its console role can still log in'
           as detail,
       'alter role ' || quote_ident(r.rolname) || ' nologin' as remediation
from platform.partners p
join pg_roles r on r.rolname in ('p_' || p.id || '_app', 'p_' || p.id || '_app2')
where p.status = 'terminated' and r.rolcanlogin
union all
select 'terminated_partner_login', 'error',
       'role ' || quote_ident(a.usename::text),
       'partner ' || p.id || ' is terminated and ' || count(*)::text || ' session(s) of it are still open',
       'select pg_terminate_backend(pid) from pg_stat_activity where usename = '
           || quote_literal(a.usename::text)
from platform.partners p
join pg_stat_activity a on a.usename in ('p_' || p.id || '_app', 'p_' || p.id || '_app2')
where p.status = 'terminated'
group by p.id, a.usename
order by 3;
