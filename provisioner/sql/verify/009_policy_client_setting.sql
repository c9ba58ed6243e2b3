-- Policies bind rows to the role, never to a setting the client can change: SET app.tenant_id
-- (or any current_setting / set_config, directly or inside a function the policy calls) must not
-- widen anything.
with expr as (
    select p.oid, p.polname, p.polrelid, e.which, pg_get_expr(e.node, p.polrelid) as text
    from pg_policy p
    cross join lateral (values ('USING', p.polqual), ('WITH CHECK', p.polwithcheck)) e(which, node)
    where e.node is not null
)
select 'policy_client_setting' as "check",
       'error' as level,
       'policy ' || quote_ident(x.polname) || ' on ' || x.polrelid::regclass::text as object,
       x.which || ' reads a client-settable setting: ' || x.text as detail,
       'bind rows to the role instead: tenant_id = (select platform.bound_tenant())' as remediation
from expr x
where x.text ~* '\m(current_setting|set_config)\M'
union all
select distinct 'policy_client_setting',
       'error',
       'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text,
       'calls ' || f.oid::regprocedure::text || ', which reads a client-settable setting',
       'make ' || f.oid::regprocedure::text || ' read platform.role_bindings by current_user'
from pg_policy p
join pg_depend d on d.classid = 'pg_policy'::regclass and d.objid = p.oid and d.refclassid = 'pg_proc'::regclass
join pg_proc f on f.oid = d.refobjid
join pg_namespace fn on fn.oid = f.pronamespace
where fn.nspname <> 'pg_catalog' and f.prosrc ~* '\m(current_setting|set_config)\M'
order by 3, 4;
