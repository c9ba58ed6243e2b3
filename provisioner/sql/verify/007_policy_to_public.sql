-- A policy TO PUBLIC applies to every role, present and future, tenant roles included.
select 'policy_to_public' as "check",
       'error' as level,
       'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text as object,
       'applies TO PUBLIC: every role, including every tenant''s, gets its rows' as detail,
       'alter policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text
           || ' to <the group role it is meant for>' as remediation
from pg_policy p
where 0 = any(p.polroles)
    -- An extension's own tables (pg_cron's job list) in a schema PUBLIC cannot enter are out of
    -- every tenant's reach whatever their policies say.
    and not (
        exists (select from pg_depend d
                where d.classid = 'pg_class'::regclass and d.objid = p.polrelid and d.deptype = 'e')
        and not has_schema_privilege('public', (select c.relnamespace from pg_class c where c.oid = p.polrelid), 'usage')
    )
order by 3;
