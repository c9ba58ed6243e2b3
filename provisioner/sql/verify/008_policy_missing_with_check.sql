-- ALL, INSERT and UPDATE policies state their WITH CHECK. Without it PostgreSQL checks new rows
-- against USING (ALL, UPDATE), so a broad USING lets writes land anywhere it reaches, or denies
-- every insert (INSERT): either way the policy does not say what it allows.
select 'policy_missing_with_check' as "check",
       'warn' as level,
       'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text as object,
       'policy for ' || case p.polcmd when '*' then 'all' when 'a' then 'insert' else 'update' end
           || ' without WITH CHECK'
           || case when p.polcmd = 'a' then ': it admits no row'
                   else ': written rows are checked only against USING ('
                        || coalesce(pg_get_expr(p.polqual, p.polrelid), 'none') || ')' end as detail,
       'alter policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text
           || ' with check (tenant_id = (select platform.bound_tenant()))' as remediation
from pg_policy p
where p.polcmd in ('*', 'a', 'w') and p.polwithcheck is null
    -- An extension's own tables (pg_cron's job list) in a schema PUBLIC cannot enter are out of
    -- every tenant's reach whatever their policies say.
    and not (
        exists (select from pg_depend d
                where d.classid = 'pg_class'::regclass and d.objid = p.polrelid and d.deptype = 'e')
        and not has_schema_privilege('public', (select c.relnamespace from pg_class c where c.oid = p.polrelid), 'usage')
    )
order by 3;
