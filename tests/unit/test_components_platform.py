"""RegionalPlatform: composition, component conventions, the transfer gate, CA export."""

from __future__ import annotations

import dataclasses
import json

import pytest

from compliance.transfers import TransferRefused
from components.program import program
from offline.mockrun import run_function_under_mocks
from tests.unit.mock_stacks import config, run, stack_run, variant

COMPONENT_TYPES = {
    "askasia:platform:RegionalPlatform",
    "askasia:platform:Keys",
    "askasia:platform:Audit",
    "askasia:platform:Database",
    "askasia:platform:Endpoint",
    "askasia:platform:Subprocessors",
    "askasia:platform:Backup",
    "askasia:platform:DrBreachDetection",
}


def test_components_use_askasia_type_tokens():
    r = stack_run()
    components = {c.type for c in r.resources if not c.custom and not c.type.startswith("pulumi:")}
    assert components == COMPONENT_TYPES
    assert len(r.of_type("askasia:platform:Database")) == 2
    assert len(r.of_type("askasia:platform:Endpoint")) == 2


def test_every_resource_is_parented_inside_the_platform():
    r = stack_run()
    platform = r.one("askasia:platform:RegionalPlatform")
    assert platform.parent.endswith("::pulumi:pulumi:Stack::askasia-platform-prod-eu-west-1")
    for res in r.resources:
        if res is platform:
            continue
        parent = r.parent_of(res)
        assert parent is not None, res.name
        if res.custom and not res.type.startswith("pulumi:providers:"):
            # Cloud resources belong to the component for their concern, never to the stack.
            assert parent.type in COMPONENT_TYPES - {"askasia:platform:RegionalPlatform"}, res.name
        else:
            assert parent is platform, res.name


def test_only_dr_resources_use_the_dr_provider():
    r = stack_run()
    in_dr = sorted(res.type for res in r.resources if res.region == "eu-central-1" and res.custom)
    assert in_dr == [
        "aws:backup/vault:Vault",
        "aws:cloudwatch/eventRule:EventRule",
        "aws:cloudwatch/eventTarget:EventTarget",
        "aws:guardduty/detector:Detector",
        "aws:guardduty/detectorFeature:DetectorFeature",
        "aws:kms/alias:Alias",
        "aws:kms/alias:Alias",
        "aws:kms/key:Key",
        "aws:kms/replicaKey:ReplicaKey",
        "aws:sns/topic:Topic",
        "aws:sns/topicPolicy:TopicPolicy",
        "aws:sns/topicSubscription:TopicSubscription",
        "pulumi:providers:aws",
    ]


def test_the_dr_region_gets_the_primarys_breach_detection():
    r = stack_run()
    for region in ("eu-west-1", "eu-central-1"):
        (detector,) = [d for d in r.of_type("aws:guardduty/detector:Detector") if d.region == region]
        assert detector.inputs["enable"] is True
        (feature,) = [f for f in r.of_type("aws:guardduty/detectorFeature:DetectorFeature") if f.region == region]
        assert (feature.inputs["detectorId"], feature.inputs["name"]) == (detector.id, "RDS_LOGIN_EVENTS")
        (rule,) = [x for x in r.of_type("aws:cloudwatch/eventRule:EventRule") if x.region == region]
        (topic,) = [t for t in r.of_type("aws:sns/topic:Topic") if t.region == region]
        (target,) = [t for t in r.of_type("aws:cloudwatch/eventTarget:EventTarget") if t.region == region]
        assert (target.inputs["rule"], target.inputs["arn"]) == (rule.outputs["name"], topic.outputs["arn"])
        key = next(k for k in r.of_type("aws:kms/key:Key") if k.outputs["arn"] == topic.inputs["kmsMasterKeyId"])
        assert key.region == region  # SNS encrypts with a key in its own region
        grants = json.loads(key.inputs["policy"])["Statement"]
        assert any(
            "events.amazonaws.com" in str(g["Principal"]) and "kms:GenerateDataKey*" in g["Action"] for g in grants
        )
        (email,) = [e for e in r.of_type("aws:sns/topicSubscription:TopicSubscription") if e.region == region]
        assert email.inputs["endpoint"] == "security@askasia.in"


def test_dr_breach_detection_stays_off_where_another_stack_watches_the_region():
    r = run(variant(dr_breach_detection=False))
    assert [d.region for d in r.of_type("aws:guardduty/detector:Detector")] == ["eu-west-1"]
    assert not r.of_type("askasia:platform:DrBreachDetection")


def test_transfer_gate_runs_before_any_resource():
    # EU data in Hong Kong has no recorded basis: nothing may be declared.
    cfg = variant(region="ap-east-1", dr_region="ap-southeast-1")

    def body() -> None:
        with pytest.raises(TransferRefused, match="transfer refused: origin EU"):
            program(cfg)

    r = run_function_under_mocks(body, stack=cfg.stack, region=cfg.region)
    assert r.resources == ()


def test_transfer_gate_covers_the_dr_copy():
    cfg = variant("prod-us-east-1", dr_region="ap-east-1")

    def body() -> None:
        with pytest.raises(TransferRefused, match="DR region ap-east-1"):
            program(cfg)

    assert run_function_under_mocks(body, stack=cfg.stack, region=cfg.region).resources == ()


def test_ca_bundle_is_what_the_instances_present():
    r = run(variant(database=dataclasses.replace(config().database, ca_cert_identifier="rds-ca-ecc384-g1")))
    assert {c["ca_bundle"] for c in r.outputs["clusters"]} == {"rds-ca-ecc384-g1"}
    assert {i.inputs["caCertIdentifier"] for i in r.of_type("aws:rds/clusterInstance:ClusterInstance")} == {
        "rds-ca-ecc384-g1"
    }


def test_cluster_outputs_come_from_the_cluster_resources():
    r = stack_run()
    for out in r.outputs["clusters"]:
        cluster = r.named(f"prod-eu-west-1-{out['cell']}-cluster")
        assert out["endpoint"] == cluster.outputs["endpoint"]
        # applications connect to the cluster itself; the proxy is the platform service's only
        assert out["app_endpoint"] == cluster.outputs["endpoint"]
        assert out["proxy_endpoint"] == r.named(f"prod-eu-west-1-{out['cell']}-endpoint-proxy").outputs["endpoint"]
        assert out["master_secret_arn"] == cluster.outputs["masterUserSecrets"][0]["secretArn"]
        assert out["iam_auth"] is cluster.inputs["iamDatabaseAuthenticationEnabled"] is True
        assert out["database"] == cluster.inputs["databaseName"]


def test_without_its_own_detector_a_region_still_routes_findings_to_its_topic():
    r = run(variant(guard_duty_detector=False))
    assert [d.region for d in r.of_type("aws:guardduty/detector:Detector")] == ["eu-central-1"]
    assert "eu-west-1" in {x.region for x in r.of_type("aws:cloudwatch/eventRule:EventRule")}
    assert "eu-west-1" in {x.region for x in r.of_type("aws:sns/topic:Topic")}
