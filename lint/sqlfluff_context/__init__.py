"""What sqlfluff needs to render provisioner/sql/ the way `provision` does: the `ident` and
`literal` filters and the context of a sample platform, partner and tenant target. The lint
reads the SQL PostgreSQL would receive, not a guess at it."""

from __future__ import annotations

import datetime as _dt

from jinja2 import filters as _jinja_filters

from provisioner.render import FILTERS as _FILTERS
from provisioner.targets import partner_target as _partner_target
from provisioner.targets import platform_target as _platform_target
from provisioner.targets import tenant_target as _tenant_target

SQLFLUFF_JINJA_FILTERS = dict(_FILTERS)
# sqlfluff's template analyzer compiles `{% set x = y | ident %}` in an environment of its own,
# which gets Jinja's default filters only; in this lint process the tool's filters join them.
_jinja_filters.FILTERS.update(SQLFLUFF_JINJA_FILTERS)

_SAMPLE = {
    **_platform_target("platform", _dt.date(2026, 1, 15)).context,
    **_partner_target("p00000000001").context,
    **_tenant_target("t00000000001", "p00000000001", "starter").context,
}
roles = _SAMPLE["roles"]
database = _SAMPLE["database"]
audit_months = _SAMPLE["audit_months"]
plan_tiers = _SAMPLE["plan_tiers"]
service_role = _SAMPLE["service_role"]
partner = _SAMPLE["partner"]
tenant = _SAMPLE["tenant"]
tables = _SAMPLE["tables"]
schedules = _SAMPLE["schedules"]
audit_retention = _SAMPLE["audit_retention"]
audit_retention_longest = _SAMPLE["audit_retention_longest"]
audit_retention_shortest = _SAMPLE["audit_retention_shortest"]
canaries = _SAMPLE["canaries"]
