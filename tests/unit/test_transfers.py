"""The transfer gate: compliance/transfers.yaml decides where each jurisdiction's data may live."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from compliance.transfers import (
    DEFAULT_PATH,
    TransferRefused,
    TransfersFileInvalid,
    basis_for,
    check_placement,
    check_stack_transfers,
    load_transfers,
    stack_refusals,
)

# The AWS commercial regions and their countries (as AWS lists them), all of which must be listed.
REGIONS = {
    "af-south-1": "ZA",
    "ap-east-1": "HK",
    "ap-east-2": "TW",
    "ap-northeast-1": "JP",
    "ap-northeast-2": "KR",
    "ap-northeast-3": "JP",
    "ap-south-1": "IN",
    "ap-south-2": "IN",
    "ap-southeast-1": "SG",
    "ap-southeast-2": "AU",
    "ap-southeast-3": "ID",
    "ap-southeast-4": "AU",
    "ap-southeast-5": "MY",
    "ap-southeast-6": "NZ",
    "ap-southeast-7": "TH",
    "ca-central-1": "CA",
    "ca-west-1": "CA",
    "eu-central-1": "DE",
    "eu-central-2": "CH",
    "eu-north-1": "SE",
    "eu-south-1": "IT",
    "eu-south-2": "ES",
    "eu-west-1": "IE",
    "eu-west-2": "GB",
    "eu-west-3": "FR",
    "il-central-1": "IL",
    "me-central-1": "AE",
    "me-south-1": "BH",
    "mx-central-1": "MX",
    "sa-east-1": "BR",
    "us-east-1": "US",
    "us-east-2": "US",
    "us-west-1": "US",
    "us-west-2": "US",
}


def test_registry_lists_every_region_and_the_served_origins() -> None:
    t = load_transfers()
    assert t.regions == REGIONS
    assert {"EU", "UK", "IN", "US"} <= set(t.origins)
    assert load_transfers() is t  # cached


def test_every_recorded_basis_cites_a_source_and_its_particulars() -> None:
    t = load_transfers()
    for (origin, country), b in t.bases.items():
        assert b.source in t.sources, (origin, country)
        if b.mechanism == "adequacy":
            assert b.reference and b.date
        if b.mechanism == "sccs":
            assert b.module and b.contract and b.tia
    # the EU's SCCs are the 2021 decision; the UK's are the Addendum/IDTA
    assert basis_for("EU", "us-east-1").reference == "Decision (EU) 2021/914"
    assert "Addendum" in basis_for("UK", "ap-south-1").reference


def test_eu_adequacy_list_is_recorded_with_decision_references() -> None:
    for region, ref in (
        ("ap-northeast-1", "2019/419"),
        ("ap-northeast-2", "2022/254"),
        ("eu-central-2", "2000/518"),
        ("eu-west-2", "2021/1772"),
        ("sa-east-1", "2026/179"),
        ("ca-central-1", "2002/2"),
        ("il-central-1", "2011/61"),
        ("ap-southeast-6", "2013/65"),
    ):
        b = basis_for("EU", region)
        assert b is not None and b.mechanism == "adequacy" and ref in b.reference, region


def test_same_jurisdiction_is_domestic_not_a_transfer() -> None:
    for origin, region in (
        ("EU", "eu-central-1"),
        ("EU", "eu-north-1"),
        ("UK", "eu-west-2"),
        ("IN", "ap-south-2"),
        ("US", "us-west-2"),
    ):
        b = basis_for(origin, region)
        assert b is not None and b.mechanism == "domestic" and not b.is_transfer


def test_me_south_1_serving_eu_is_refused_naming_what_to_record() -> None:
    with pytest.raises(TransferRefused) as exc:
        check_stack_transfers("me-south-1", None, ["EU"])
    message = str(exc.value)
    assert "\n" not in message
    for text in ("EU", "me-south-1", "BH", "Bahrain", "compliance/transfers.yaml", "bases.EU.BH", "SCCs"):
        assert text in message


def test_eu_west_1_with_dr_in_frankfurt_for_eu_and_uk_is_allowed() -> None:
    assert check_stack_transfers("eu-west-1", "eu-central-1", ["EU", "UK"]) is None


def test_a_dr_region_without_a_basis_is_refused_as_the_dr_copy() -> None:
    with pytest.raises(TransferRefused, match=r"origin EU -> DR region ap-southeast-1 \(SG, Singapore\)"):
        check_stack_transfers("eu-west-1", "ap-southeast-1", ["EU"])
    # origins are checked in the order the stack lists them; the first one lacking a basis is named
    with pytest.raises(TransferRefused, match="origin UK"):
        check_stack_transfers("eu-west-1", "ap-southeast-1", ["UK", "EU"])


def test_stack_refusals_lists_every_refused_arrow() -> None:
    refused = [str(r) for r in stack_refusals("me-south-1", "me-central-1", ["EU", "UK"])]
    assert [m.split(" has ")[0] for m in refused] == [
        "transfer refused: origin EU -> region me-south-1 (BH, Bahrain)",
        "transfer refused: origin UK -> region me-south-1 (BH, Bahrain)",
        "transfer refused: origin EU -> DR region me-central-1 (AE, United Arab Emirates)",
        "transfer refused: origin UK -> DR region me-central-1 (AE, United Arab Emirates)",
    ]
    assert stack_refusals("eu-west-1", "eu-central-1", ["EU", "UK"]) == []


def test_unknown_region_and_unknown_origin_are_refused_clearly() -> None:
    with pytest.raises(TransferRefused, match="unknown AWS region 'xx-north-9'"):
        check_stack_transfers("xx-north-9", None, ["EU"])
    with pytest.raises(TransferRefused, match="unknown AWS region 'mars-1'"):
        check_stack_transfers("eu-west-1", "mars-1", ["EU"])
    with pytest.raises(TransferRefused, match="unknown origin jurisdiction 'FR'.*EU, IN, UK, US"):
        check_stack_transfers("eu-west-1", None, ["FR"])
    with pytest.raises(TransferRefused, match="no origins"):
        check_stack_transfers("eu-west-1", None, [])


def test_uk_relies_on_its_own_list_not_the_eus() -> None:
    # Brazil is EU-adequate (2026) but not UK-adequate: a UK tenant in sa-east-1 is refused.
    assert basis_for("EU", "sa-east-1") is not None
    assert basis_for("UK", "sa-east-1") is None
    with pytest.raises(TransferRefused, match="bases.UK.BR"):
        check_placement("UK", "sa-east-1")


def test_tenant_placement_returns_the_basis_or_refuses() -> None:
    b = check_placement("EU", "us-east-1")
    assert (b.origin, b.country, b.mechanism, b.tia) == ("EU", "US", "sccs", "TIA-2026-EU-US-01")
    assert check_placement("eea", "eu-west-2").mechanism == "adequacy"  # alias, any case
    with pytest.raises(TransferRefused, match="origin IN -> region ap-southeast-1"):
        check_placement("IN", "ap-southeast-1")


def test_india_records_its_assessment_even_though_dpdp_restricts_nothing_yet() -> None:
    b = basis_for("IN", "eu-west-1")
    assert b is not None and b.mechanism == "permitted" and "s.16" in b.reference and b.assessment
    assert basis_for("IN", "me-south-1") is None  # not assessed: a deliberate record is needed


def test_prohibited_pair_is_refused_with_its_reason() -> None:
    with pytest.raises(TransferRefused, match="prohibited.*28 CFR 202"):
        check_placement("US", "ap-east-1")


def _write(tmp_path: Path, doc: dict) -> Path:
    path = tmp_path / "transfers.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


def test_a_basis_missing_its_tia_makes_the_registry_invalid(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    del doc["bases"]["EU"]["US"]["tia"]
    with pytest.raises(TransfersFileInvalid, match="bases.EU.US: sccs needs tia"):
        load_transfers(_write(tmp_path, doc))


def test_recording_a_basis_opens_the_region(tmp_path: Path) -> None:
    doc = yaml.safe_load(DEFAULT_PATH.read_text(encoding="utf-8"))
    doc["bases"]["EU"]["BH"] = {
        "mechanism": "sccs",
        "reference": "Decision (EU) 2021/914",
        "source": "eu-sccs",
        "module": "Module 2",
        "contract": "Partner DPA",
        "tia": "TIA-2026-EU-BH-01",
    }
    t = load_transfers(_write(tmp_path, doc))
    assert check_stack_transfers("me-south-1", None, ["EU"], transfers=t) is None
    assert check_placement("EU", "me-south-1", transfers=t).tia == "TIA-2026-EU-BH-01"


def test_missing_registry_is_invalid_not_silently_open(tmp_path: Path) -> None:
    with pytest.raises(TransfersFileInvalid, match="not found"):
        load_transfers(tmp_path / "absent.yaml")
