-- SECURITY DEFINER functions run with their owner's rights: none is executable by PUBLIC or a
-- tenant-side role unless it is on the allow-list below (regprocedure text, reviewed one by one).
with allow_list(signature) as (
    select s from (values (null::text)) v(s) where s is not null
),
definer as (
    select p.oid, p.proacl, p.proowner
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
)
select 'security_definer_executable' as "check",
       'error' as level,
       'function ' || d.oid::regprocedure::text as object,
       'SECURITY DEFINER (runs as ' || d.proowner::regrole::text || ') executable by '
           || coalesce(g.rolname, 'PUBLIC') as detail,
       'revoke execute on function ' || d.oid::regprocedure::text || ' from '
           || coalesce(quote_ident(g.rolname), 'public') || ', or add it to the allow-list after review'
           as remediation
from definer d
cross join lateral aclexplode(coalesce(d.proacl, acldefault('f', d.proowner))) a
left join pg_roles g on g.oid = a.grantee
where a.privilege_type = 'EXECUTE'
  and (a.grantee = 0 or g.rolname ~ '^[tp]_' or g.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s))
  and d.oid::regprocedure::text not in (select l.signature from allow_list l)
order by 3, 4;
