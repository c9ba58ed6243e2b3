-- A permissive policy whose USING or WITH CHECK does not depend on the row (true, 1 = 1,
-- current_user = 'x', ...) opens every row to its roles; permissive policies OR together, so
-- one is enough. Only a policy for the operator role alone may do that, or one for the platform
-- owner alone (it owns every platform table and could switch RLS off: such a policy adds no reach;
-- the audit maintenance functions run as it), or a SELECT policy for the verifier alone (V040: it
-- reads the control plane's ids and times, holds no write grant and belongs to no other role).
with expr as (
    select p.oid, p.polname, p.polrelid, p.polcmd, p.polroles, e.which, e.node
    from pg_policy p
    cross join lateral (values ('USING', p.polqual), ('WITH CHECK', p.polwithcheck)) e(which, node)
    where p.polpermissive and e.node is not null
)
select 'policy_using_true' as "check",
       'error' as level,
       'policy ' || quote_ident(x.polname) || ' on ' || x.polrelid::regclass::text as object,
       'policy for ' || case x.polcmd when '*' then 'all' when 'r' then 'select' when 'a' then 'insert'
                                      when 'w' then 'update' else 'delete' end
           || ' to '
           || (select string_agg(case when r = 0 then 'PUBLIC' else r::regrole::text end, ', ')
               from unnest(x.polroles) r)
           || ' has ' || x.which || ' (' || pg_get_expr(x.node, x.polrelid)
           || '), which does not depend on the row: every row is open to those roles' as detail,
       'drop policy ' || quote_ident(x.polname) || ' on ' || x.polrelid::regclass::text
           || '; bind rows to the role: tenant_id = (select platform.bound_tenant())' as remediation
from expr x
where x.node::text !~ '\{VAR '
  and x.polroles is distinct from array[coalesce(to_regrole(%(operator)s)::oid, 0)]::oid[]
  and x.polroles is distinct from array[coalesce(to_regrole(%(owner)s)::oid, 0)]::oid[]
  and not (x.polcmd = 'r' and x.polroles = array[coalesce(to_regrole(%(verifier)s)::oid, 0)]::oid[])
order by 3, x.which;
