-- Advisory locks fill the cell's shared lock table (20,000 keys from one session leave every
-- other session "out of shared memory") and take any key. Where the cluster's superuser is the
-- platform's own (not on RDS/Aurora, whose pg_catalog belongs to rdsadmin and whose
-- rds_superuser cannot revoke there), no tenant or partner role nor PUBLIC may execute them.
with tenant_grantee as (
    select r.oid, r.rolname
    from pg_roles r
    where starts_with(r.rolname, 't_') or starts_with(r.rolname, 'p_')
       or r.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s)
    union all
    select 0, 'PUBLIC'
)
select 'advisory_lock_functions' as "check", 'error' as level,
       'function ' || p.oid::regprocedure::text as object,
       'EXECUTE held by ' || g.rolname || ': it can fill the shared lock table' as detail,
       'revoke execute on function ' || p.oid::regprocedure::text || ' from '
           || case when g.oid = 0 then 'public' else quote_ident(g.rolname) end
           || ' (as the cluster''s superuser)' as remediation
from pg_proc p
cross join lateral aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
join tenant_grantee g on g.oid = a.grantee
where p.pronamespace = 'pg_catalog'::regnamespace
  and p.proname ~ '^pg_(try_)?advisory_'
  and not exists (select 1 from pg_roles r where r.rolname = 'rdsadmin')
order by 3, 4;
