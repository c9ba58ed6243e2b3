"""Stack config: typed, validated, one clear line per mistake, weakening only by explicit opt-in."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pulumi
import pytest
import yaml

from components.config import config_from_pulumi
from stackconfig.config import (
    INSECURE_SETTINGS,
    CellConfig,
    ConfigError,
    DatabaseSettings,
    PlatformConfig,
    PointInTimeRestore,
    parse_config,
)
from stackconfig.files import load_stack_config
from tests.unit.mock_stacks import STACKS_DIR

SOURCE = "stacks/Pulumi.prod-eu-west-1.yaml"


def raw_config(stack: str = "prod-eu-west-1") -> dict[str, Any]:
    doc = yaml.safe_load((STACKS_DIR / f"Pulumi.{stack}.yaml").read_text())
    return copy.deepcopy(doc["config"])


def parse(values: dict[str, Any]) -> PlatformConfig:
    return parse_config("prod-eu-west-1", values, SOURCE)


def refused(values: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as info:
        parse(values)
    message = str(info.value)
    assert "\n" not in message, "errors are one line"
    assert message.startswith(SOURCE), "errors name the file"
    return message


def test_stack_files_load_with_their_regions_and_dr():
    eu = load_stack_config("prod-eu-west-1", STACKS_DIR)
    assert (eu.region, eu.dr_region, eu.origins) == ("eu-west-1", "eu-central-1", ("EU", "UK"))
    ap = load_stack_config("prod-ap-south-1", STACKS_DIR)
    assert (ap.region, ap.dr_region, ap.origins) == ("ap-south-1", "ap-south-2", ("IN",))
    us = load_stack_config("prod-us-east-1", STACKS_DIR)
    assert (us.region, us.dr_region, us.origins) == ("us-east-1", "us-west-2", ("US",))


def test_defaults_are_the_secure_ones():
    cfg = load_stack_config("prod-eu-west-1", STACKS_DIR)
    assert cfg.database.deletion_protection is True
    assert cfg.database.publicly_accessible is False
    assert cfg.database.backup_retention_days == 35
    assert cfg.database.monitoring_interval == 60
    assert cfg.access_token_ttl_minutes == 15
    assert cfg.dr_mode == "snapshot-copy"
    assert cfg.allow_insecure == ()
    assert cfg.weakened_settings == ()
    assert all(cell.instances >= 2 for cell in cfg.cells)


REQUIRED = [
    "aws:region",
    "askasia:environment",
    "askasia:drRegion",
    "askasia:origins",
    "askasia:cells",
    "askasia:vpcId",
    "askasia:privateSubnetIds",
    "askasia:allowedSourceSecurityGroupIds",
    "askasia:domain",
    "askasia:hostedZoneId",
    "askasia:subprocessors",
]


@pytest.mark.parametrize("key", REQUIRED)
def test_missing_required_key_is_named(key):
    values = raw_config()
    del values[key]
    assert f"missing required key {key}" in refused(values)


@pytest.mark.parametrize(
    ("mutate", "expected"),
    [
        (
            lambda v: v["askasia:cells"][0].update(instances="two"),
            "askasia:cells[0].instances: expected an integer, got 'two'",
        ),
        (lambda v: v["askasia:cells"][0].pop("name"), "missing required key askasia:cells[0].name"),
        (lambda v: v.update({"askasia:engineVersion": 16.6}), "askasia:engineVersion: expected a string"),
        (lambda v: v.update({"askasia:origins": "EU"}), "askasia:origins: expected a list"),
        (
            lambda v: v.update({"askasia:deletionProtection": "no"}),
            "askasia:deletionProtection: expected true or false",
        ),
        (
            lambda v: v.update({"askasia:backupRetentionDays": True}),
            "askasia:backupRetentionDays: expected an integer, got True",
        ),
        (lambda v: v.update({"askasia:origins": ["EU", "FR"]}), "askasia:origins[1]: 'FR' is not one of"),
        (lambda v: v.update({"askasia:drRegion": "eu-west-1"}), "askasia:drRegion: must differ"),
        (lambda v: v.update({"askasia:drMode": "aurora-global"}), "aurora-global is not supported"),
        (
            lambda v: v.update({"askasia:privateSubnetIds": ["subnet-0a11b22c33d44e551"]}),
            "askasia:privateSubnetIds: needs at least 2",
        ),
        (lambda v: v["askasia:allowedSourceSecurityGroupIds"].append("0.0.0.0/0"), "is not a valid security group id"),
        (lambda v: v.update({"askasia:masterUsername": "postgres"}), "is a default admin name"),
        (lambda v: v.update({"askasia:accessTokenTtlMinutes": 61}), "61 is outside 1..60"),
        (lambda v: v.update({"askasia:engineVersion": "14.9"}), "Aurora PostgreSQL 15.x or 16.x"),
        (lambda v: v.update({"askasia:databaseLogRetentionDays": 100}), "100 is not one of"),
        (lambda v: v.update({"askasia:deletionProtecton": False}), "unknown key askasia:deletionProtecton"),
        (lambda v: v["askasia:cells"].append({"name": "cell-1"}), "duplicate cell names"),
        (
            lambda v: v["askasia:subprocessors"]["payments"].update(rotationLambdaArn="stripe-rotator"),
            "is not a valid Lambda function ARN",
        ),
        (
            lambda v: v["askasia:cells"][0].update(
                restoreFromSnapshot="snap-1",
                restoreToPointInTime={"sourceClusterIdentifier": "x", "useLatestRestorableTime": True},
            ),
            "are exclusive",
        ),
        (
            lambda v: v.update({"askasia:preferredMaintenanceWindow": "sun:02:30-sun:03:30"}),
            "overlaps the backup window",
        ),
    ],
)
def test_wrong_values_get_one_clear_line(mutate, expected):
    values = raw_config()
    mutate(values)
    assert expected in refused(values)


def test_missing_stack_file_is_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"Pulumi\.prod-xx-1\.yaml: stack config file not found"):
        load_stack_config("prod-xx-1", tmp_path)


def test_config_error_from_the_engine_is_a_run_error_so_the_engine_prints_no_traceback():
    values = {**raw_config(), "askasia:environment": "Prod!"}
    with pytest.raises(ConfigError) as caught:
        config_from_pulumi("prod-eu-west-1", get=lambda key: values.get(key), keys=lambda: list(values))
    assert isinstance(caught.value, pulumi.RunError)
    assert isinstance(caught.value, ValueError)


WEAKENINGS = {
    "deletionProtection": lambda v: v.update({"askasia:deletionProtection": False}),
    "backupRetentionDays": lambda v: v.update({"askasia:backupRetentionDays": 3}),
    "publiclyAccessible": lambda v: v.update({"askasia:publiclyAccessible": True}),
    "singleInstance": lambda v: v["askasia:cells"][0].update(instances=1),
    "enhancedMonitoring": lambda v: v.update({"askasia:monitoringInterval": 0}),
}


def test_every_insecure_setting_has_a_weakening_test():
    assert set(WEAKENINGS) == set(INSECURE_SETTINGS)


@pytest.mark.parametrize("setting", sorted(WEAKENINGS))
def test_weakening_without_opt_in_is_refused(setting):
    values = raw_config()
    WEAKENINGS[setting](values)
    message = refused(values)
    assert f"add '{setting}' to askasia:allowInsecure" in message


@pytest.mark.parametrize("setting", sorted(WEAKENINGS))
def test_weakening_with_explicit_opt_in_is_accepted_and_reported(setting):
    values = raw_config()
    WEAKENINGS[setting](values)
    values["askasia:allowInsecure"] = [setting]
    cfg = parse(values)
    assert cfg.weakened_settings == (setting,)
    assert cfg.allow_insecure == (setting,)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: DatabaseSettings(backup_retention_days=40), "askasia:backupRetentionDays: 40 is outside 1..35"),
        (lambda: DatabaseSettings(engine_version="14.9"), "is not a valid Aurora PostgreSQL 15.x or 16.x version"),
        (lambda: CellConfig(name="cell-1", instances=0), "instances: 0 is outside 1..15"),
        (lambda: PointInTimeRestore(source_cluster_identifier="x"), "set exactly one of restoreToTime"),
        (lambda: dataclasses.replace(load_stack_config("prod-eu-west-1", STACKS_DIR), dr_region="eu-west-1"), "differ"),
        (
            lambda: dataclasses.replace(
                load_stack_config("prod-eu-west-1", STACKS_DIR), allow_insecure=("deletionProtection",)
            ),
            "lists deletionProtection but the stack keeps that secure default",
        ),
    ],
)
def test_settings_check_their_values_however_they_are_built(build, expected):
    # The components take settings objects as they are: building one is where they are checked.
    with pytest.raises(ConfigError, match=expected):
        build()
    assert DatabaseSettings().backup_retention_days == 35  # the defaults pass their own checks


def test_an_opt_in_that_weakens_nothing_is_refused():
    values = raw_config()
    values["askasia:allowInsecure"] = ["deletionProtection"]
    assert "lists deletionProtection but the stack keeps that secure default" in refused(values)


def test_unknown_opt_in_name_is_refused():
    values = raw_config()
    values["askasia:allowInsecure"] = ["everything"]
    assert "askasia:allowInsecure[0]: 'everything' is not one of" in refused(values)


def engine_values(values: dict[str, Any]) -> dict[str, str]:
    """What the Pulumi engine hands a Python program: strings, structured values as JSON."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()}


def test_engine_config_validates_the_same_way():
    values = engine_values(raw_config())
    from_engine = config_from_pulumi("prod-eu-west-1", get=values.get, keys=lambda: list(values))
    assert from_engine == load_stack_config("prod-eu-west-1", STACKS_DIR)


def test_engine_config_through_the_sdk_config_store():
    pulumi.runtime.set_all_config(engine_values(raw_config("prod-us-east-1")))
    try:
        cfg = config_from_pulumi("prod-us-east-1")
    finally:
        pulumi.runtime.set_all_config({})
    assert cfg == load_stack_config("prod-us-east-1", STACKS_DIR)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda v: v.pop("askasia:vpcId"), "stack prod-eu-west-1 config: missing required key askasia:vpcId"),
        (
            lambda v: v.update({"askasia:backupRetentionDays": "many"}),
            "askasia:backupRetentionDays: expected an integer, got 'many'",
        ),
        (lambda v: v.update({"askasia:deletionProtection": "false"}), "deletionProtection weakens a secure default"),
        (lambda v: v.update({"askasia:colour": "blue"}), "unknown key askasia:colour"),
    ],
)
def test_engine_config_errors_match_the_file_errors(change, expected):
    values = engine_values(raw_config())
    change(values)
    with pytest.raises(ConfigError) as info:
        config_from_pulumi("prod-eu-west-1", get=values.get, keys=lambda: list(values))
    assert expected in str(info.value)
