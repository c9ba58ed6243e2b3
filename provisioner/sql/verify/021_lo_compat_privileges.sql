-- lo_compat_privileges = on turns off privilege checks on large objects: every role reads and
-- writes every tenant's. Checked for this session and for any role or database override.
select 'lo_compat_privileges' as "check", 'error' as level,
       'setting lo_compat_privileges' as object,
       'on: large objects are readable and writable by every role' as detail,
       'set lo_compat_privileges = off in the cluster parameter group (postgresql.conf locally)' as remediation
where current_setting('lo_compat_privileges')::boolean
union all
select 'lo_compat_privileges', 'error',
       'setting lo_compat_privileges for ' || coalesce('role ' || nullif(s.setrole, 0)::regrole::text, 'every role')
           || coalesce(' in database ' || quote_ident(d.datname), ''),
       'an override turns it on: ' || c,
       'alter role ... reset lo_compat_privileges / alter database ... reset lo_compat_privileges'
from pg_db_role_setting s
cross join lateral unnest(s.setconfig) c
left join pg_database d on d.oid = s.setdatabase
where c ~* '^lo_compat_privileges=(on|true|yes|1|t|y)$'
order by 3;
