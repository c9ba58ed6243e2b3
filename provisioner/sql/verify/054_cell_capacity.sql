-- The cell's committed connection limits fit its budget: the operator reserve and the
-- platform's pool (%(reserve)s and %(pool)s, contract/tiers.py) plus every tenant and partner
-- login role's CONNECTION LIMIT stay within the cell's connection budget, the server's
-- max_connections unless the cell declares a smaller or (the local stack) larger
-- askasia.connection_budget. Past it, roles that each keep their own limit can still, together,
-- take every connection: the master and other tenants are then refused. A role without a limit
-- is check 050's finding; it is counted here as the whole budget.
with budget as (
    select coalesce(nullif(current_setting('askasia.connection_budget', true), '')::int,
                    current_setting('max_connections')::int) as connections,
           %(reserve)s::int as reserve,
           %(pool)s::int as pool
),
login_role as (
    select r.rolconnlimit
    from pg_roles r
    -- by position, not by regular expression (see 001)
    where r.rolcanlogin
      and (starts_with(r.rolname, 't_') or starts_with(r.rolname, 'p_'))
      -- a rotation twin (_app2) shares its app login's limit: the guard counts both against it
      and substr(r.rolname, 15) = '_app'
),
committed as (
    select b.reserve + b.pool
           + coalesce(sum(case when l.rolconnlimit < 0 then b.connections else l.rolconnlimit end), 0)::int
               as connections,
           count(l.rolconnlimit) as roles
    from budget b left join login_role l on true
    group by b.reserve, b.pool
)
select 'cell_capacity' as "check", 'error' as level,
       'database ' || quote_ident(current_database()) as object,
       'committed connections ' || c.connections || ' (reserve ' || b.reserve || ', platform pool '
           || b.pool || ', ' || c.roles || ' login roles'' limits) exceed the cell''s budget of '
           || b.connections || ': together the roles can take every connection' as detail,
       'place new tenants in another cell (placement refuses a full cell), close or move tenants, '
           || 'or raise max_connections (a larger instance class)' as remediation
from committed c cross join budget b
where c.connections > b.connections;
