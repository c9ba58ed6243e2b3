-- Every connection is encrypted: TLS on, nothing older than TLS 1.2, rds.force_ssl set where the
-- server has it (Aurora), and no TCP session the checking role can see runs without TLS or over
-- an older protocol. ssl_min_protocol_version is read through pg_settings, which shows it only to
-- roles with pg_read_all_settings; the sessions' TLS state of other roles needs
-- pg_read_all_stats. Whatever the role, its own session is measured.
select 'tls_required' as "check", 'error' as level, 'setting ssl' as object,
       'off: connections are not encrypted' as detail,
       'set ssl = on (postgresql.conf locally; always on in Aurora)' as remediation
where not current_setting('ssl')::boolean
union all
select 'tls_required', 'error', 'setting ssl_min_protocol_version',
       setting || ' accepts protocols older than TLS 1.2',
       'set ssl_min_protocol_version = ''TLSv1.2'' in the cluster parameter group (postgresql.conf locally)'
from pg_settings
where name = 'ssl_min_protocol_version' and setting not in ('TLSv1.2', 'TLSv1.3')
union all
select 'tls_required', 'error', 'setting rds.force_ssl',
       current_setting('rds.force_ssl', true) || ': the cluster accepts plain-text connections',
       'set rds.force_ssl = 1 in the cluster parameter group'
where current_setting('rds.force_ssl', true) not in ('1', 'on')
union all
select 'tls_required', 'error',
       'session ' || a.pid || ' of role ' || quote_ident(a.usename) || ' from ' || host(a.client_addr),
       case
           when s.ssl then 'a session over ' || s.version || ', older than TLS 1.2'
           else 'a client session without TLS: its queries and rows cross the network in plain text'
       end,
       'refuse plain-text and old-protocol clients: rds.force_ssl = 1 and ssl_min_protocol_version = ''TLSv1.2'''
from pg_stat_activity a
join pg_stat_ssl s on s.pid = a.pid
where a.backend_type = 'client backend' and a.client_addr is not null
    and (not s.ssl or s.version not in ('TLSv1.2', 'TLSv1.3'))
order by 3;
