-- A policy TO PUBLIC applies to every role, present and future, tenant roles included.
select 'policy_to_public' as "check",
       'error' as level,
       'policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text as object,
       'applies TO PUBLIC: every role, including every tenant''s, gets its rows' as detail,
       'alter policy ' || quote_ident(p.polname) || ' on ' || p.polrelid::regclass::text
           || ' to <the group role it is meant for>' as remediation
from pg_policy p
where 0 = any(p.polroles)
order by 3;
