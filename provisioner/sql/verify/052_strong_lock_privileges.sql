-- No tenant or partner role (nor a group role they are in, nor PUBLIC) holds a table-level
-- privilege that lets it take a strong lock on a table outside its own schema: UPDATE and
-- DELETE allow LOCK TABLE up to ACCESS EXCLUSIVE, TRUNCATE takes it, REFERENCES (a foreign key)
-- and TRIGGER take SHARE ROW EXCLUSIVE. Held on a shared table, one idle transaction stalls
-- every other tenant on it. Column grants do not allow LOCK TABLE: status changes go that way.
with tenant_grantee as (
    select r.oid, r.rolname::text as rolname,
           case when starts_with(r.rolname, 't_') then left(r.rolname, 14) end as own_schema
    from pg_roles r
    where starts_with(r.rolname, 't_') or starts_with(r.rolname, 'p_')
       or r.rolname in (%(tenant_app)s, %(tenant_read)s, %(partner_app)s)
    union all
    select 0, 'PUBLIC', null
)
select 'strong_lock_privileges' as "check", 'error' as level,
       'table ' || c.oid::regclass::text as object,
       a.privilege_type || ' held by ' || g.rolname || ': it may lock the table against every other session'
           as detail,
       'revoke ' || a.privilege_type || ' on table ' || c.oid::regclass::text || ' from '
           || case when g.oid = 0 then 'public' else quote_ident(g.rolname) end
           || case when a.privilege_type = 'UPDATE' then ' (grant UPDATE on the columns needed instead)' else '' end
           as remediation
from pg_class c
join pg_namespace n on n.oid = c.relnamespace
cross join lateral aclexplode(c.relacl) a
join tenant_grantee g on g.oid = a.grantee
where c.relacl is not null
  and c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and a.privilege_type in ('UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER')
  and n.nspname is distinct from g.own_schema
  -- LOCK TABLE needs the schema too: an extension's tables (pg_cron's) in a schema the grantee
  -- cannot enter are out of its reach
  and has_schema_privilege(case when g.oid = 0 then 'public' else g.rolname::text end, n.oid, 'usage')
order by 3, 4;
