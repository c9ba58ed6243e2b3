-- The membership graph, followed transitively: a tenant-side role reaches only its own group
-- (t_<id>_app -> tenant_app, t_<id>_ro -> tenant_read, p_<id>_app -> partner_app; a rotation twin
-- t_<id>_app2 / p_<id>_app2 -> its own app role and, through it, that group), never another
-- tenant's role, a partner role, the operator or owner, or a predefined pg_* role
-- (pg_read_all_data, pg_read_all_stats, pg_monitor, pg_signal_backend, ...). And no role but the
-- tenant's own, the master and superusers is a member of a tenant's roles or the tenant groups;
-- of the platform roles, only the platform's service role and the migrator, of the operator and
-- nothing more (operator_membership judges what the operator roles and the master reach).
-- Role names come from catalog-cache lookups (::regrole), not joins: see 001. The kinds are
-- materialized: inlined, each reference to a kind would run its regular expressions again.
with recursive reach as (
    select m.member, m.roleid, 1 as depth, array[m.member, m.roleid]::oid[] as path, m.admin_option
    from pg_auth_members m
    union all
    select r.member, m.roleid, r.depth + 1, r.path || m.roleid, m.admin_option
    from reach r
    join pg_auth_members m on m.member = r.roleid
    where r.depth < 16 and m.roleid <> all(r.path)
),
edge as (
    select distinct on (r.member, r.roleid)
           r.depth, r.path, r.admin_option,
           r.member, r.member::regrole::text as subject, r.roleid::regrole::text as target
    from reach r
    order by r.member, r.roleid, r.depth
),
kinded as materialized (
    select e.*,
           case when e.subject ~ '^t_[a-z0-9]{12}_app$' then 'tenant app'
                when e.subject ~ '^t_[a-z0-9]{12}_ro$' then 'tenant ro'
                when e.subject ~ '^t_[a-z0-9]{12}_owner$' then 'tenant owner'
                when e.subject ~ '^p_[a-z0-9]{12}_app$' then 'partner app'
                when e.subject ~ '^t_[a-z0-9]{12}_app2$' then 'tenant twin'
                when e.subject ~ '^p_[a-z0-9]{12}_app2$' then 'partner twin'
                when e.subject ~ '^"?[tp]_' then 'tenant-side'
                when e.subject in (quote_ident(%(tenant_app)s), quote_ident(%(tenant_read)s),
                                   quote_ident(%(partner_app)s)) then 'group'
           end as subject_kind,
           case when e.target ~ '^t_[a-z0-9]{12}_(app|app2|ro|owner)$' then 'tenant role'
                when e.target ~ '^p_[a-z0-9]{12}_app2?$' then 'partner app'
                when e.target ~ '^"?[tp]_' then 'tenant-side'
                when e.target in (quote_ident(%(tenant_app)s), quote_ident(%(tenant_read)s),
                                  quote_ident(%(partner_app)s)) then 'group'
                when e.target in (quote_ident(%(operator)s), quote_ident(%(owner)s)) then 'platform'
           end as target_kind,
           substring(e.target from '^t_([a-z0-9]{12})_') as target_tenant
    from edge e
),
judged as (
    select k.*,
           case
               -- forward: what a tenant-side role reaches
               when k.subject_kind is not null then
                   case when k.depth = 1
                             and ((k.subject_kind = 'tenant app' and k.target = quote_ident(%(tenant_app)s))
                                  or (k.subject_kind = 'tenant ro' and k.target = quote_ident(%(tenant_read)s))
                                  or (k.subject_kind = 'partner app' and k.target = quote_ident(%(partner_app)s)))
                        then case when k.admin_option
                                  then 'holds ADMIN OPTION on ' || k.target || ': it can grant that role to others'
                             end
                        -- a twin: its own app role (the name without the trailing 2), and that role's group
                        when k.subject_kind in ('tenant twin', 'partner twin') and k.depth = 1
                             and k.target = left(k.subject, -1)
                        then case when k.admin_option
                                  then 'holds ADMIN OPTION on ' || k.target || ': it can grant that role to others'
                             end
                        when k.subject_kind in ('tenant twin', 'partner twin') and k.depth = 2
                             and k.path[2] = to_regrole(left(k.subject, -1))::oid
                             and k.target = quote_ident(case k.subject_kind when 'tenant twin' then %(tenant_app)s
                                                                            else %(partner_app)s end)
                        then null
                        when k.target ~ '^"?pg_' then 'reaches the predefined role ' || k.target
                        when k.target_kind = 'tenant role'
                        then 'reaches ' || k.target || ', a role of tenant ' || k.target_tenant
                        when k.target_kind = 'partner app' then 'reaches the partner role ' || k.target
                        else 'reaches ' || k.target || ', outside its own group'
                   end
               -- reverse: who else is inside a tenant's roles, the tenant groups or the platform roles
               -- (only the few members that are not tenant-side get here: superusers and the master
               -- are trusted)
               when coalesce((select s.rolsuper from pg_roles s where s.oid = k.member), false)
                    or k.subject = quote_ident(%(master)s)
               then null
               -- the platform's service (the RDS Proxy's one user) acts as the operator, directly
               when k.subject in (quote_ident(%(service)s), quote_ident(%(migrator)s))
                    and k.target = quote_ident(%(operator)s) and k.depth = 1
               then null
               when k.target_kind in ('tenant role', 'partner app', 'tenant-side')
               then 'is a member of ' || k.target || ', which belongs to '
                    || coalesce('tenant ' || k.target_tenant, 'the tenant namespace')
               when k.target_kind = 'group'
               then 'is a member of the group ' || k.target || ' without being a tenant or partner role of its kind'
               when k.target_kind = 'platform'
               then 'is a member of ' || k.target || ', which reads every tenant''s shared rows'
           end as problem
    from kinded k
)
select 'role_membership' as "check",
       'error' as level,
       'role ' || j.subject as object,
       j.problem || case when j.depth > 1
                         then ' (via ' || array_to_string(array(select p::regrole::text
                                                                from unnest(j.path) with ordinality u(p, i)
                                                                order by i), ' -> ') || ')'
                         else '' end as detail,
       'revoke ' || (select p::regrole::text from unnest(j.path) with ordinality u(p, i) where i = 2)
           || ' from ' || j.subject as remediation
from judged j
where j.problem is not null
order by 3, 4;
