-- platform.role_bindings is what every policy trusts: each row binds a tenant's app (or its
-- rotation twin, _app2) or read-only role to that tenant (and its partner), or a partner's role to that partner. A row
-- for any other role, a mismatched id, or a role that no longer exists (the next role created
-- with that name inherits it) widens what someone sees.
with binding as (
    select b.role_name, b.tenant_id, b.partner_id,
           to_regrole(quote_ident(b.role_name)) as role_oid,
           (select t.partner_id from platform.tenants t where t.id = b.tenant_id) as tenant_partner,
           -- t_<id>_app / t_<id>_ro and p_<id>_app by position: no regular expression per row (see 001);
           -- a malformed id never equals a tenant's id, so it is still caught below.
           case when starts_with(b.role_name, 't_') and substr(b.role_name, 15) in ('_app', '_app2', '_ro')
                then substr(b.role_name, 3, 12) end as named_tenant,
           case when starts_with(b.role_name, 'p_') and substr(b.role_name, 15) in ('_app', '_app2')
                then substr(b.role_name, 3, 12) end as named_partner
    from platform.role_bindings b
),
judged as (
    select b.role_name,
           case
               when b.named_tenant is null and b.named_partner is null
               then 'binds a role that is not a tenant app/ro or partner role'
               when b.role_oid is null
               then 'binds a role that does not exist: a role created with that name inherits the binding'
               when b.named_tenant is not null and b.tenant_id is distinct from b.named_tenant
               then 'binds the role of tenant ' || b.named_tenant || ' to tenant ' || coalesce(b.tenant_id, 'NULL')
               when b.named_tenant is not null and b.partner_id is distinct from b.tenant_partner
               then 'binds tenant ' || b.tenant_id || ' to partner ' || b.partner_id || ', not its partner '
                    || coalesce(b.tenant_partner, 'NULL')
               when b.named_partner is not null and (b.tenant_id is not null or b.partner_id <> b.named_partner)
               then 'binds the role of partner ' || b.named_partner || ' to partner ' || b.partner_id
                    || coalesce(' and tenant ' || b.tenant_id, '')
           end as what
    from binding b
)
select 'role_bindings' as "check", 'error' as level,
       'binding ' || quote_literal(p.role_name) as object,
       p.what as detail,
       'delete from platform.role_bindings where role_name = ' || quote_literal(p.role_name)
           || '; provision tenants apply' as remediation
from judged p
where p.what is not null
union all
select 'role_bindings', 'warn', 'role ' || quote_ident('t_' || t.id || '_' || v.suffix),
       'active tenant role without a binding: it sees none of its own shared rows',
       'provision tenants apply'
from platform.tenants t
cross join (values ('app'), ('app2'), ('ro')) v(suffix)
where t.status = 'active'
  and to_regrole('t_' || t.id || '_' || v.suffix) is not null
  and not exists (select 1 from platform.role_bindings b where b.role_name = 't_' || t.id || '_' || v.suffix)
order by 3, 4;
