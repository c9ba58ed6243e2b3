-- A closed tenant is closed at once: its app role (and its rotation twin) cannot log in and neither it nor its
-- read-only role holds a session. Role lookups by name (to_regrole), as 001 does.
select 'closed_tenant_login' as "check", 'error' as level,
       'role ' || r.rolname as object,
       'tenant ' || t.id || ' is closed (' || t.closed_at::text || ') and its app role can still log in' as detail,
       'alter role ' || quote_ident(r.rolname) || ' nologin' as remediation
from platform.tenants t
join pg_roles r on r.rolname in ('t_' || t.id || '_app', 't_' || t.id || '_app2')
where t.status = 'closed' and r.rolcanlogin
union all
select 'closed_tenant_login', 'error',
       'role ' || quote_ident(a.usename::text),
       'tenant ' || t.id || ' is closed and ' || count(*)::text || ' session(s) of it are still open',
       'select pg_terminate_backend(pid) from pg_stat_activity where usename = '
           || quote_literal(a.usename::text)
from platform.tenants t
join pg_stat_activity a on a.usename in ('t_' || t.id || '_app', 't_' || t.id || '_app2', 't_' || t.id || '_ro')
where t.status = 'closed'
group by t.id, a.usename
order by 3;
