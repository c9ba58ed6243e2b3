-- Passwords the server hashes are hashed with SCRAM-SHA-256. The tool sends verifiers it computed
-- itself, but a role that sets its own password gets the server's method, and any role may set
-- its own default: checked for this session and for every role or database override.
select 'password_encryption' as "check", 'error' as level, 'setting password_encryption' as object,
       current_setting('password_encryption') || ': a password set in plain text is stored with it' as detail,
       'set password_encryption = ''scram-sha-256'' in the cluster parameter group (postgresql.conf locally)'
           as remediation
where current_setting('password_encryption') <> 'scram-sha-256'
union all
select 'password_encryption', 'error',
       'setting password_encryption for ' || coalesce('role ' || nullif(s.setrole, 0)::regrole::text, 'every role')
           || coalesce(' in database ' || quote_ident(d.datname), ''),
       'an override chooses ' || c,
       'alter role ... reset password_encryption / alter database ... reset password_encryption'
from pg_db_role_setting s
cross join lateral unnest(s.setconfig) c
left join pg_database d on d.oid = s.setdatabase
where c ~* '^password_encryption=' and c !~* '^password_encryption=scram-sha-256$'
order by 3;
