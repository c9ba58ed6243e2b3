-- A tenant's own roles hold no more than their job: the app role reads and writes rows in its
-- schema, the read-only role reads them. No CREATE in the schema, no TRUNCATE, REFERENCES or
-- TRIGGER, no writes for _ro. (Catalog-cache lookups and string tests per row: see 001.)
with grants as materialized (
    select n.nspname::text as nsp, 'schema' as kind, n.oid as objoid, a.grantee::regrole::text as grantee_name,
           a.privilege_type
    from pg_namespace n
    cross join lateral aclexplode(n.nspacl) a
    where starts_with(n.nspname, 't_') and n.nspacl is not null and a.grantee not in (0, n.nspowner)
      and a.privilege_type <> 'USAGE'
    union all
    select c.relnamespace::regnamespace::text, case c.relkind when 'S' then 'sequence' else 'table' end, c.oid,
           a.grantee::regrole::text, a.privilege_type
    from pg_class c
    cross join lateral aclexplode(c.relacl) a
    where c.relkind in ('r', 'p', 'v', 'm', 'S', 'f') and c.relacl is not null
      and a.grantee not in (0, c.relowner) and lower(a.privilege_type) not in ('select', 'usage')
      and starts_with(c.relnamespace::regnamespace::text, 't_')
)
select 'tenant_role_privileges' as "check",
       'warn' as level,
       g.kind || ' ' || case g.kind when 'schema' then quote_ident(g.nsp) else g.objoid::regclass::text end as object,
       g.privilege_type || ' held by ' || g.grantee_name || ': more than its '
           || case when g.grantee_name = g.nsp || '_ro' then 'read-only' else 'DML' end || ' job' as detail,
       'revoke ' || g.privilege_type || ' on ' || g.kind || ' '
           || case g.kind when 'schema' then quote_ident(g.nsp) else g.objoid::regclass::text end
           || ' from ' || g.grantee_name as remediation
from grants g
where (g.grantee_name = g.nsp || '_app'
       and (g.kind = 'schema' or (g.kind = 'table' and g.privilege_type in ('TRUNCATE', 'REFERENCES', 'TRIGGER'))))
   or g.grantee_name = g.nsp || '_ro'
order by 3, 4;
