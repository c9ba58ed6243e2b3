-- Export stays possible until 30 days after closure (privacy policy section 6): a tenant closed
-- less than 30 days ago must still hold what `provision tenants export` reads, its schema, and
-- the owner role the export acts as. One row per tenant, naming what is gone. (Past the window
-- purge_overdue takes over; a terminated partner's account data is its rows, which stay until
-- `partners purge` deletes them with the partner row.)
select 'export_window' as "check", 'error' as level,
       'tenant ' || t.id as object,
       'closed ' || t.closed_at::text || ', inside its 30-day export window, and no longer holds: '
           || concat_ws(', ',
                        case when to_regnamespace('t_' || t.id) is null then 'schema t_' || t.id end,
                        case when to_regrole('t_' || t.id || '_owner') is null then 'role t_' || t.id || '_owner' end)
           as detail,
       'restore the tenant from the latest recovery point (provision dr rebuild --pitr) before '
           || (t.closed_at + interval '30 days')::text || ', then provision tenants export' as remediation
from platform.tenants t
where t.status = 'closed' and t.closed_at >= now() - interval '30 days'
  and (to_regnamespace('t_' || t.id) is null or to_regrole('t_' || t.id || '_owner') is null)
order by 3;
