-- Tenant data goes 30 days after closure, partner account data 30 days after termination
-- (privacy policy section 6): a tenant closed, or a partner terminated, more than 30 days ago
-- whose schema, roles, bindings or shared rows still exist is a purge not run. One row per
-- tenant or partner, naming what is left. The secret is outside the database: `provision
-- tenants purge` deletes it first, so a tenant still on record here may still hold it too.
select 'purge_overdue' as "check", 'error' as level,
       'tenant ' || t.id as object,
       'closed ' || t.closed_at::text || ', more than 30 days ago, and still holds: '
           || concat_ws(', ',
                        case when to_regnamespace('t_' || t.id) is not null then 'schema t_' || t.id end,
                        case when exists (select 1 from pg_roles r where r.rolname in
                                          ('t_' || t.id || '_owner', 't_' || t.id || '_app', 't_' || t.id || '_ro'))
                             then 'roles' end,
                        case when exists (select 1 from platform.role_bindings b where b.tenant_id = t.id)
                             then 'role bindings' end,
                        case when exists (select 1 from platform.worker_runs w where w.tenant_id = t.id)
                             then 'worker_runs rows' end,
                        case when exists (select 1 from platform.cost_entries c where c.tenant_id = t.id)
                             then 'cost_entries rows' end,
                        'its platform.tenants row') as detail,
       'provision tenants purge --stack <stack> --tenant ' || t.id || ' --yes' as remediation
from platform.tenants t
where t.status = 'closed' and t.closed_at < now() - interval '30 days'
union all
select 'purge_overdue', 'error',
       'partner ' || p.id,
       'terminated ' || p.terminated_at::text || ', more than 30 days ago, and still holds: '
           || concat_ws(', ',
                        case when to_regrole('p_' || p.id || '_app') is not null then 'role p_' || p.id || '_app' end,
                        case when exists (select 1 from platform.tenants t where t.partner_id = p.id)
                             then 'tenants' end,
                        case when exists (select 1 from platform.role_bindings b where b.partner_id = p.id)
                             then 'role bindings' end,
                        case when exists (select 1 from platform.worker_runs w where w.partner_id = p.id)
                             then 'worker_runs rows' end,
                        case when exists (select 1 from platform.cost_entries c where c.partner_id = p.id)
                             then 'cost_entries rows' end,
                        'its platform.partners row'),
       'provision partners purge --stack <stack> --partner ' || p.id || ' --yes'
from platform.partners p
where p.status = 'terminated' and p.terminated_at < now() - interval '30 days'
order by 3;
