-- What the operator roles and the master reach through role membership, followed transitively.
-- Each operator role reaches exactly what its job needs (the migrator and the platform's service:
-- the operator; the verifier: pg_read_all_stats; the guard: pg_signal_backend and
-- pg_read_all_stats; the maintenance role: nothing) and nothing else: no tenant's or partner's
-- role (the migrator holds a tenant's owner only inside that tenant's step, and verify never
-- runs beside an apply), no platform owner, no other predefined role. The master (the
-- database's owner) may hold the platform roles and what Aurora's rds_superuser brings, but no
-- tenant-side role and none of the predefined roles that reach past the database: the server's
-- programs and files, every table's data, or signalling backends granted to it directly.
-- Names come from catalog-cache lookups (::regrole), not joins: see 001.
with recursive operator_role(rolname, kind) as (
    values (%(migrator)s, 'migrator'), (%(verifier)s, 'verifier'), (%(guard)s, 'guard'),
           (%(maintenance)s, 'maintenance'), (%(service)s, 'service')
),
subject(oid, kind) as (
    select r.oid, o.kind
    from operator_role o
    join pg_roles r on r.rolname = o.rolname
    union
    select d.datdba, 'master'
    from pg_database d
    where d.datname = current_database()
),
allowed(kind, target) as (
    values ('migrator', %(operator)s), ('service', %(operator)s), ('service', 'rds_iam'),
           ('verifier', 'pg_read_all_stats'), ('guard', 'pg_signal_backend'), ('guard', 'pg_read_all_stats')
),
reach as (
    select s.kind, m.member, m.roleid, 1 as depth, array[m.member, m.roleid]::oid[] as path
    from subject s
    join pg_auth_members m on m.member = s.oid
    union all
    select r.kind, r.member, m.roleid, r.depth + 1, r.path || m.roleid
    from reach r
    join pg_auth_members m on m.member = r.roleid
    where r.depth < 16 and m.roleid <> all(r.path)
),
edge as (
    select distinct on (r.kind, r.member, r.roleid)
           r.kind, r.depth, r.path, r.member::regrole::text as subject, r.roleid::regrole::text as target,
           (select a.rolname from pg_roles a where a.oid = r.roleid) as target_name
    from reach r
    order by r.kind, r.member, r.roleid, r.depth
),
judged as (
    select e.*,
           case
               when e.target_name ~ '^[tp]_'
               then 'reaches ' || e.target || ', a tenant''s or partner''s role: it acts as that tenant'
               when e.kind = 'master'
               then case
                        when e.target_name in ('pg_execute_server_program', 'pg_read_server_files',
                                               'pg_write_server_files')
                        then 'reaches ' || e.target || ': the server''s programs or files, outside the database'
                        when e.target_name in ('pg_read_all_data', 'pg_write_all_data')
                        then 'reaches ' || e.target || ': every tenant''s data, past its grants'
                        when e.target_name = 'pg_signal_backend' and e.depth = 1
                        then 'holds ' || e.target || ' directly: it may end any tenant''s sessions'
                    end
               when exists (select 1 from allowed a where a.kind = e.kind and a.target = e.target_name)
               then null
               when e.target_name ~ '^pg_' then 'reaches the predefined role ' || e.target || ', beyond its job'
               else 'reaches ' || e.target || ', beyond its job'
           end as problem
    from edge e
)
select 'operator_membership' as "check",
       'error' as level,
       'role ' || j.subject as object,
       case when j.kind = 'master' then 'the master ' else 'the ' || j.kind || ' ' end || j.problem
           || case when j.depth > 1
                   then ' (via ' || array_to_string(array(select p::regrole::text
                                                          from unnest(j.path) with ordinality u(p, i)
                                                          order by i), ' -> ') || ')'
                   else '' end as detail,
       -- the grant that made the edge: the path's last hop
       'revoke ' || j.target || ' from '
           || j.path[array_length(j.path, 1) - 1]::regrole::text as remediation
from judged j
where j.problem is not null
order by 3, 4;
