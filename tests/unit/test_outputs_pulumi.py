"""Reading stack outputs through the Automation API needs the `pulumi` CLI."""

import shutil

import pytest

from contract.outputs import parse_outputs
from provisioner.automation import stack_outputs
from provisioner.errors import ProvisionError
from tests.unit.test_outputs import GOOD

HAVE_PULUMI = shutil.which("pulumi") is not None


@pytest.mark.skipif(HAVE_PULUMI, reason="the pulumi CLI is installed: the missing-CLI message cannot be shown")
def test_without_the_cli_the_error_says_what_to_do(tmp_path):
    with pytest.raises(ProvisionError, match="pulumi CLI is not on PATH.*--outputs FILE"):
        stack_outputs("prod-eu-west-1", tmp_path)


@pytest.mark.skipif(not HAVE_PULUMI, reason="the pulumi CLI is not installed: the Automation API cannot run here")
def test_outputs_come_back_through_the_automation_api(tmp_path, monkeypatch):
    import pulumi
    from pulumi import automation

    monkeypatch.setenv("PULUMI_BACKEND_URL", f"file://{tmp_path}")
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", "test-only")

    def program():
        for key, value in GOOD.items():
            pulumi.export(key, value)

    stack = automation.create_or_select_stack(
        stack_name="prod-eu-west-1", project_name="askasia-platform", program=program
    )
    stack.up()
    work = tmp_path / "project"
    work.mkdir()
    (work / "Pulumi.yaml").write_text("name: askasia-platform\nruntime: python\n")
    assert parse_outputs(stack_outputs("prod-eu-west-1", work)).clusters[0].cell == "cell-1"
