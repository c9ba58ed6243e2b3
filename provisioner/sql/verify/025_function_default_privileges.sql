-- PostgreSQL grants EXECUTE on every new function to PUBLIC. The roles that create objects (the
-- master, the platform owner, each tenant's owner) revoke that through default privileges, so a
-- function added later is not callable by every tenant.
with creator as (
    select r.oid, r.rolname
    from pg_roles r
    where r.rolname in (%(master)s, %(owner)s) or r.rolname ~ '^t_[a-z0-9]{12}_owner$'
)
select 'function_default_privileges' as "check", 'warn' as level,
       'role ' || quote_ident(c.rolname) as object,
       'functions it creates are executable by PUBLIC (no default privileges revoke it)' as detail,
       'alter default privileges for role ' || quote_ident(c.rolname)
           || ' revoke execute on functions from public' as remediation
from creator c
where not exists (
    select 1
    from pg_default_acl d
    where d.defaclrole = c.oid and d.defaclnamespace = 0 and d.defaclobjtype = 'f'
      and not exists (select 1 from aclexplode(d.defaclacl) a where a.grantee = 0)
)
order by 3;
