"""Input checks for onboarding, pure functions of the input, the known partners and the stack
outputs (no database): every refusal is one line, raised before anything is written."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from compliance.transfers import TransferRefused, check_served, load_transfers
from contract.outputs import StackOutputs
from provisioner.directory import NewTenant, Partner
from provisioner.errors import InputError
from provisioner.names import check_jurisdiction, check_plan, check_slug


def validate_partner(slug: str, jurisdiction: str) -> None:
    """A partner's slug, and a jurisdiction the transfers registry knows as an origin."""
    check_slug(slug, "partner")
    check_jurisdiction(jurisdiction)
    try:
        load_transfers().origin(jurisdiction)
    except TransferRefused as exc:
        raise InputError(str(exc)) from None


def check_origin_served(jurisdiction: str, outputs: StackOutputs) -> None:
    """Data of this jurisdiction may be placed in the stack's cells (and copied to its DR region)."""
    try:
        check_served(jurisdiction, outputs.stack, outputs.origins, outputs.region, outputs.dr.get("region"))
    except TransferRefused as exc:
        raise InputError(str(exc)) from None


def validate_tenant_rows(
    rows: Sequence[Mapping[str, object]], partners: Mapping[str, Partner], outputs: StackOutputs
) -> list[NewTenant]:
    """Every check for a batch of new tenants; raises on the first bad row with its number."""
    seen: set[tuple[str, str]] = set()
    out = []
    for number, row in enumerate(rows, start=1):
        where = f"row {number}: " if len(rows) > 1 else ""
        try:
            slug = check_slug(row.get("tenant"), "tenant")
            plan = check_plan(row.get("plan"))
            partner_slug = check_slug(row.get("partner"), "partner")
            region = str(row.get("region") or outputs.region)
            if partner_slug not in partners:
                raise InputError(f"partner {partner_slug!r} not found in stack {outputs.stack}")
            partner = partners[partner_slug]
            if region != outputs.region:
                raise InputError(
                    f"region {region} is not served by stack {outputs.stack} ({outputs.region}); "
                    "use that region's stack"
                )
            # A partner recorded before its origin was refused (or since the stack stopped
            # declaring it) places no new tenant.
            check_origin_served(partner.jurisdiction, outputs)
            if (partner_slug, slug) in seen:
                raise InputError(f"tenant {slug!r} of partner {partner_slug!r} appears twice")
            seen.add((partner_slug, slug))
        except InputError as exc:
            raise InputError(f"{where}{exc}") from None
        out.append(NewTenant(partner, slug, plan, region))
    return out
