-- Tenant, partner and platform group roles carry no attribute that escapes the model:
-- SUPERUSER and BYPASSRLS skip row level security, CREATEROLE grants itself any role, CREATEDB
-- and REPLICATION reach beyond the database; LOGIN only for t_<id>_app and p_<id>_app and their
-- rotation twins (_app2).
select 'role_attributes' as "check",
       'error' as level,
       'role ' || quote_ident(r.rolname) as object,
       'has ' || a.attr || a.why as detail,
       'alter role ' || quote_ident(r.rolname) || ' ' || a.fix as remediation
from pg_roles r
cross join lateral (values
    ('SUPERUSER', r.rolsuper, 'nosuperuser', ': bypasses every privilege and policy'),
    ('BYPASSRLS', r.rolbypassrls, 'nobypassrls', ': ignores row level security on shared tables'),
    ('CREATEROLE', r.rolcreaterole, 'nocreaterole', ': can grant itself other tenants'' roles'),
    ('CREATEDB', r.rolcreatedb, 'nocreatedb', ': can create databases outside the model'),
    ('REPLICATION', r.rolreplication, 'noreplication', ': can stream every tenant''s data'),
    ('LOGIN', r.rolcanlogin and r.rolname !~ '^(t|p)_[a-z0-9]{12}_app2?$', 'nologin',
     ': only app roles log in; owner, read-only and group roles must not')
) a(attr, has, fix, why)
where a.has
  and (r.rolname ~ '^[tp]_'
       or r.rolname in (%(owner)s, %(operator)s, %(tenant_app)s, %(tenant_read)s, %(partner_app)s))
order by 3, 4;
