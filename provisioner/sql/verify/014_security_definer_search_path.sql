-- Every SECURITY DEFINER function pins search_path, with pg_temp listed last: unpinned, it
-- resolves names through the caller's search_path; without pg_temp listed, temporary objects
-- are searched first. Either way a caller can make it run their code with the owner's rights.
with definer as (
    select p.oid,
           (select substr(c, 13) from unnest(p.proconfig) c where c ~ '^search_path=') as search_path
    from pg_proc p
    join pg_namespace n on n.oid = p.pronamespace
    where p.prosecdef and n.nspname not in ('pg_catalog', 'information_schema')
)
select 'security_definer_search_path' as "check",
       case when d.search_path is null then 'error' else 'warn' end as level,
       'function ' || d.oid::regprocedure::text as object,
       case when d.search_path is null
            then 'SECURITY DEFINER without a pinned search_path: names resolve through the caller''s'
            else 'SECURITY DEFINER with search_path ' || d.search_path
                 || ', where pg_temp is not last: temporary objects are searched first' end as detail,
       'alter function ' || d.oid::regprocedure::text || ' set search_path = pg_catalog, pg_temp' as remediation
from definer d
where d.search_path is null
   or trim(both ' "' from substring(d.search_path from '([^,]*)$')) <> 'pg_temp'
order by 3;
