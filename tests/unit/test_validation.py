"""Onboarding's input checks are pure: rows, known partners and the stack outputs in, one-line
refusals out, no database needed."""

from __future__ import annotations

import dataclasses

import pytest

from contract.outputs import parse_outputs
from provisioner.directory import Partner
from provisioner.errors import InputError
from provisioner.validation import check_origin_served, validate_partner, validate_tenant_rows
from tests.unit.test_outputs import GOOD

OUTPUTS = parse_outputs(GOOD)  # prod-eu-west-1 serving EU and UK, DR eu-central-1
PARTNERS = {
    "eu-agency": Partner("aaaaaaaaaaaa", "eu-agency", "EU", "active"),
    "us-agency": Partner("cccccccccccc", "us-agency", "US", "active"),
}


def rows(*items: dict) -> list[dict]:
    return [{"partner": "eu-agency", "plan": "starter", **item} for item in items]


def test_good_rows_come_back_typed_in_order():
    new = validate_tenant_rows(rows({"tenant": "alpha"}, {"tenant": "beta", "plan": "enterprise"}), PARTNERS, OUTPUTS)
    assert [(t.slug, t.plan, t.region, t.partner.id) for t in new] == [
        ("alpha", "starter", "eu-west-1", "aaaaaaaaaaaa"),
        ("beta", "enterprise", "eu-west-1", "aaaaaaaaaaaa"),
    ]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ({"tenant": "x';drop--"}, 'row 2: tenant "x\';drop--" is invalid'),
        ({"tenant": "gamma", "plan": "platinum"}, "row 2: plan 'platinum' is invalid"),
        ({"tenant": "gamma", "partner": "nobody"}, "row 2: partner 'nobody' not found in stack prod-eu-west-1"),
        ({"tenant": "gamma", "region": "us-east-1"}, "row 2: region us-east-1 is not served by stack prod-eu-west-1"),
        ({"tenant": "gamma", "region": "me-south-1"}, "row 2: region me-south-1 is not served by stack prod-eu-west-1"),
        (
            {"tenant": "gamma", "partner": "us-agency"},
            "row 2: transfer refused: origin US is not among the origins stack prod-eu-west-1 declares (EU, UK)",
        ),
        ({"tenant": "alpha"}, "row 2: tenant 'alpha' of partner 'eu-agency' appears twice"),
    ],
)
def test_a_bad_row_is_named_by_its_number(bad: dict, message: str):
    with pytest.raises(InputError) as refused:
        validate_tenant_rows(rows({"tenant": "alpha"}, bad), PARTNERS, OUTPUTS)
    assert str(refused.value).startswith(message), str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_dr_copy_needs_a_basis_too():
    bahrain_dr = dataclasses.replace(OUTPUTS, dr={"region": "me-south-1", "mode": "snapshot-copy"})
    with pytest.raises(InputError, match=r"EU -> DR region me-south-1 \(BH"):
        validate_tenant_rows(rows({"tenant": "alpha"}), PARTNERS, bahrain_dr)


@pytest.mark.parametrize(
    ("slug", "jurisdiction", "message"),
    [
        ("Bad Slug", "EU", "is invalid"),
        ("ok-slug", "eu", "jurisdiction 'eu' is invalid"),
        ("ok-slug", "XX", "unknown origin"),
    ],
)
def test_partners_are_checked_before_anything(slug: str, jurisdiction: str, message: str):
    with pytest.raises(InputError, match=message):
        validate_partner(slug, jurisdiction)
    validate_partner("ok-slug", "EU")


def test_a_us_partner_in_an_eu_stack_is_refused_unless_the_stack_declares_us():
    # Refused: the stack serves EU and UK; a US partner's data would make a transfer nobody declared.
    with pytest.raises(InputError, match=r"origin US is not among the origins stack prod-eu-west-1 declares"):
        check_origin_served("US", OUTPUTS)
    with pytest.raises(InputError, match="add it to askasia:origins"):
        validate_tenant_rows([{"partner": "us-agency", "tenant": "acme", "plan": "growth"}], PARTNERS, OUTPUTS)
    # Admitted: the stack declares US, whose bases for Ireland and Germany are recorded (permitted).
    serving_us = dataclasses.replace(OUTPUTS, origins=("EU", "UK", "US"))
    check_origin_served("US", serving_us)
    placed = validate_tenant_rows([{"partner": "us-agency", "tenant": "acme", "plan": "growth"}], PARTNERS, serving_us)
    assert [(t.partner.jurisdiction, t.region) for t in placed] == [("US", "eu-west-1")]


def test_a_declared_origin_still_needs_a_basis_for_the_dr_region():
    declared_but_unrecorded = dataclasses.replace(
        OUTPUTS, origins=("EU", "UK", "US"), dr={"region": "ap-east-1", "mode": "snapshot-copy"}
    )
    with pytest.raises(InputError, match=r"US -> DR region ap-east-1 \(HK, Hong Kong\) is prohibited"):
        check_origin_served("US", declared_but_unrecorded)
