"""Endpoint: RDS Proxy requiring TLS and IAM auth, DNS names, a DNS-validated certificate."""

from __future__ import annotations

import json

import pytest

from components.endpoint import EndpointArgs
from contract.outputs import PROXY_USER
from tests.unit.mock_stacks import config, stack_run

CELL = "prod-eu-west-1-cell-1"


def test_proxy_requires_tls_and_end_to_end_iam_and_registers_no_secret():
    r = stack_run()
    proxy = r.named(f"{CELL}-endpoint-proxy")
    i = proxy.inputs
    assert i["engineFamily"] == "POSTGRESQL"
    assert i["requireTls"] is True
    assert i["debugLogging"] is False
    assert i["defaultAuthScheme"] == "IAM_AUTH"
    assert not i.get("auths")  # no secret registered: the master's cannot be among them


def test_proxy_sits_in_the_private_subnets_behind_its_own_group():
    r = stack_run()
    proxy = r.named(f"{CELL}-endpoint-proxy")
    proxy_sg = r.named(f"{CELL}-endpoint-proxy-sg")
    db_sg = r.named(f"{CELL}-sg")
    assert proxy.inputs["vpcSubnetIds"] == list(config().private_subnet_ids)
    assert proxy.inputs["vpcSecurityGroupIds"] == [proxy_sg.id]
    ingress = {
        x.inputs["referencedSecurityGroupId"]
        for x in r.of_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if x.inputs["securityGroupId"] == proxy_sg.id
    }
    assert ingress == set(config().allowed_source_security_group_ids)
    egress = [
        x.inputs
        for x in r.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")
        if x.inputs["securityGroupId"] == proxy_sg.id
    ]
    assert egress == [
        {**egress[0], "referencedSecurityGroupId": db_sg.id, "fromPort": 5432, "toPort": 5432, "ipProtocol": "tcp"}
    ]


def test_proxy_role_connects_only_as_the_platform_service_and_reads_no_secret():
    r = stack_run()
    role = r.named(f"{CELL}-endpoint-proxy-role")
    assert r.named(f"{CELL}-endpoint-proxy").inputs["roleArn"] == role.outputs["arn"]
    trust = json.loads(role.inputs["assumeRolePolicy"])["Statement"][0]
    assert trust["Principal"] == {"Service": "rds.amazonaws.com"}
    policies = [p for p in r.of_type("aws:iam/rolePolicy:RolePolicy") if p.inputs["role"] == role.id]
    assert [p.name for p in policies] == [f"{CELL}-endpoint-proxy-connect"]
    (statement,) = json.loads(policies[0].inputs["policy"])["Statement"]
    resource_id = r.named(f"{CELL}-cluster").outputs["clusterResourceId"]
    assert statement["Action"] == "rds-db:connect"
    assert statement["Resource"] == f"arn:aws:rds-db:eu-west-1:123456789012:dbuser:{resource_id}/{PROXY_USER}"
    assert "secretsmanager" not in policies[0].inputs["policy"]


def test_the_stack_passes_the_proxy_rule_and_the_rule_fails_the_old_master_secret_proxy():
    from policy.rules import STACK_RULES, Resource

    r = stack_run()
    (rule,) = [x for x in STACK_RULES if x.id == "rds-proxy-not-master"]
    resources = [Resource(x.type, x.name, x.inputs, x.outputs) for x in r.resources]
    assert rule.check(resources) == []
    master = r.named(f"{CELL}-cluster").outputs["masterUserSecrets"][0]["secretArn"]
    proxy = r.named(f"{CELL}-endpoint-proxy")
    old = Resource(proxy.type, proxy.name, {**proxy.inputs, "auths": [{"authScheme": "SECRETS", "secretArn": master}]})
    assert rule.check([*resources, old]) == [(proxy.name, f"auths[0] is the master secret {master}")]


def test_proxy_targets_the_cell_cluster_after_its_instances():
    r = stack_run()
    target = r.named(f"{CELL}-endpoint-proxy-target")
    assert target.inputs["dbClusterIdentifier"] == "askasia-prod-eu-west-1-cell-1"
    assert target.inputs["dbProxyName"] == "askasia-prod-eu-west-1-cell-1"
    for inst in ("instance-1", "instance-2"):
        assert r.named(f"{CELL}-{inst}").urn in target.dependencies


def test_certificate_is_dns_validated_with_a_strong_key():
    r = stack_run()
    cert = r.named(f"{CELL}-endpoint-cert")
    assert cert.inputs["validationMethod"] == "DNS"
    assert cert.inputs["keyAlgorithm"] in ("RSA_2048", "EC_prime256v1", "EC_secp384r1")
    assert cert.inputs["domainName"] == "cell-1.db.eu-west-1.askasia.in"
    assert set(cert.inputs["subjectAlternativeNames"]) == {
        "cell-1-ro.db.eu-west-1.askasia.in",
        "cell-1-proxy.db.eu-west-1.askasia.in",
    }
    expected = {(o["resourceRecordName"], o["resourceRecordValue"]) for o in cert.outputs["domainValidationOptions"]}
    records = [r.named(f"{CELL}-endpoint-cert-validation-{i}") for i in range(3)]
    assert {(x.inputs["name"], x.inputs["records"][0]) for x in records} == expected
    assert all(x.inputs["zoneId"] == config().hosted_zone_id for x in records)
    validation = r.named(f"{CELL}-endpoint-cert-validated")
    assert validation.inputs["certificateArn"] == cert.outputs["arn"]
    assert len(validation.inputs["validationRecordFqdns"]) == 3


def test_dns_names_point_at_writer_reader_and_proxy():
    r = stack_run()
    cluster = r.named(f"{CELL}-cluster").outputs
    proxy = r.named(f"{CELL}-endpoint-proxy").outputs
    expected = {
        "writer": ("cell-1.db.eu-west-1.askasia.in", cluster["endpoint"]),
        "reader": ("cell-1-ro.db.eu-west-1.askasia.in", cluster["readerEndpoint"]),
        "proxy": ("cell-1-proxy.db.eu-west-1.askasia.in", proxy["endpoint"]),
    }
    for role, (name, target) in expected.items():
        record = r.named(f"{CELL}-endpoint-{role}-dns").inputs
        assert (record["name"], record["type"], record["records"]) == (name, "CNAME", [target])
        assert record["zoneId"] == config().hosted_zone_id


def test_endpoint_args_refuse_weak_certificate_keys():
    with pytest.raises(ValueError, match="certificate_key_algorithm"):
        EndpointArgs(
            stack="s",
            region="eu-west-1",
            cell="cell-1",
            domain="askasia.in",
            hosted_zone_id="Z1",
            vpc_id="vpc-1",
            subnet_ids=["a", "b"],
            allowed_source_security_group_ids=["sg-1"],
            database_security_group_id="sg-2",
            cluster_identifier="c",
            writer_endpoint="w",
            reader_endpoint="r",
            cluster_resource_id="cluster-ABC",
            account_id="1",
            certificate_key_algorithm="RSA_1024",
        )
