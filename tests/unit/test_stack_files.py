"""Setting one key of a stack file in place: other lines and comments stay, a bad value never lands."""

from __future__ import annotations

import shutil

import pytest

from stackconfig.config import ConfigError
from stackconfig.files import load_stack_config, set_config_value
from tests.unit.mock_stacks import STACKS_DIR

KEY = "askasia:jwtKeyGeneration"


def test_a_key_is_added_then_replaced_and_the_rest_of_the_file_is_kept(tmp_path):
    shutil.copy(STACKS_DIR / "Pulumi.prod-us-east-1.yaml", tmp_path)
    before = (tmp_path / "Pulumi.prod-us-east-1.yaml").read_text()
    assert set_config_value("prod-us-east-1", tmp_path, KEY, 2).jwt_key_generation == 2
    assert set_config_value("prod-us-east-1", tmp_path, KEY, 3).jwt_key_generation == 3
    after = (tmp_path / "Pulumi.prod-us-east-1.yaml").read_text()
    assert after.count(KEY) == 1 and f"  {KEY}: 3\n" in after
    assert after.replace(f"  {KEY}: 3\n", "") == before  # comments and every other line as they were
    assert load_stack_config("prod-us-east-1", tmp_path).jwt_key_generation == 3


def test_a_value_the_config_refuses_leaves_the_file_alone(tmp_path):
    shutil.copy(STACKS_DIR / "Pulumi.prod-us-east-1.yaml", tmp_path)
    before = (tmp_path / "Pulumi.prod-us-east-1.yaml").read_text()
    with pytest.raises(ConfigError, match="jwtKeyGeneration: 0 is outside 1..100000"):
        set_config_value("prod-us-east-1", tmp_path, KEY, 0)
    assert (tmp_path / "Pulumi.prod-us-east-1.yaml").read_text() == before
    with pytest.raises(ConfigError, match="stack config file not found"):
        set_config_value("nope", tmp_path, KEY, 2)
