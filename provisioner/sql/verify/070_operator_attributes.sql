-- The operator roles, one job each (V040 migrator and verifier, the guard, the maintenance role,
-- the platform's service), judged as strictly as tenants' roles: each exists and logs in, and
-- none has SUPERUSER, BYPASSRLS, CREATEDB or REPLICATION; CREATEROLE only the migrator, whose
-- job is creating tenants' roles (what it reaches with it, operator_membership reports).
with operator_role(rolname, may_createrole) as (
    values (%(migrator)s, true), (%(verifier)s, false), (%(guard)s, false), (%(maintenance)s, false),
           (%(service)s, false)
)
select 'operator_attributes' as "check",
       'error' as level,
       'role ' || quote_ident(o.rolname) as object,
       'has ' || a.attr || a.why as detail,
       'alter role ' || quote_ident(o.rolname) || ' ' || a.fix as remediation
from operator_role o
join pg_roles r on r.rolname = o.rolname
cross join lateral (values
    ('SUPERUSER', r.rolsuper, 'nosuperuser', ': bypasses every privilege and policy'),
    ('BYPASSRLS', r.rolbypassrls, 'nobypassrls', ': ignores row level security on shared tables'),
    ('CREATEROLE', r.rolcreaterole and not o.may_createrole, 'nocreaterole',
     ': can grant itself any tenant''s roles and predefined roles'),
    ('CREATEDB', r.rolcreatedb, 'nocreatedb', ': can create databases outside the model'),
    ('REPLICATION', r.rolreplication, 'noreplication', ': can stream every tenant''s data'),
    ('NOLOGIN', not r.rolcanlogin, 'login', ': the tool cannot run its job as it')
) a(attr, has, fix, why)
where a.has
union all
select 'operator_attributes', 'error', 'role ' || quote_ident(o.rolname),
       'does not exist: the tool has no least-privilege role for this job',
       'provision tenants apply --stack <stack> (the platform steps create it)'
from operator_role o
where not exists (select 1 from pg_roles r where r.rolname = o.rolname)
order by 3, 4;
