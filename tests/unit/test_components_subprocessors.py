"""Sub-processors: SES with DKIM and TLS required; payment credentials encrypted and rotated."""

from __future__ import annotations

import dataclasses

from components.subprocessors import ROTATION_TAG, SUBPROCESSOR_TAG
from tests.unit.mock_stacks import config, key_arn, run, stack_run, variant

SUB = "prod-eu-west-1-subprocessors"


def test_email_configuration_set_requires_tls():
    cs = stack_run().named(f"{SUB}-email-config").inputs
    assert cs["deliveryOptions"]["tlsPolicy"] == "REQUIRE"
    assert cs["tags"][SUBPROCESSOR_TAG] == "amazon-ses"


def test_email_domain_uses_the_configuration_set_and_dkim():
    r = stack_run()
    identity = r.named(f"{SUB}-email-domain")
    assert identity.inputs["emailIdentity"] == "mail.eu.askasia.in"
    assert identity.inputs["configurationSetName"] == r.named(f"{SUB}-email-config").outputs["configurationSetName"]
    assert identity.inputs["dkimSigningAttributes"]["nextSigningKeyLength"] == "RSA_2048_BIT"
    assert identity.tags[SUBPROCESSOR_TAG] == "amazon-ses"
    tokens = identity.outputs["dkimSigningAttributes"]["tokens"]
    records = {
        r.named(f"{SUB}-email-dkim-{i}").inputs["name"]: r.named(f"{SUB}-email-dkim-{i}").inputs for i in range(3)
    }
    for token in tokens:
        record = records[f"{token}._domainkey.mail.eu.askasia.in"]
        assert (record["type"], record["records"]) == ("CNAME", [f"{token}.dkim.amazonses.com"])


def test_payment_secret_encrypted_with_the_secrets_key_and_tagged():
    r = stack_run()
    secret = r.named(f"{SUB}-payments-secret")
    assert secret.inputs["kmsKeyId"] == key_arn(r, "secrets")
    assert secret.inputs["name"] == "askasia/prod-eu-west-1/subprocessors/stripe/api-key"
    assert secret.inputs["recoveryWindowInDays"] == 30
    assert secret.tags[SUBPROCESSOR_TAG] == "stripe"
    assert secret.tags[ROTATION_TAG] == "lambda"
    assert "secretString" not in secret.inputs  # the value never passes through config or state


def test_payment_secret_rotates_through_the_configured_lambda():
    r = stack_run()
    rotation = r.one("aws:secretsmanager/secretRotation:SecretRotation")
    assert rotation.inputs["secretId"] == r.named(f"{SUB}-payments-secret").id
    assert rotation.inputs["rotationLambdaArn"] == config().payments.rotation_lambda_arn
    assert rotation.inputs["rotationRules"]["automaticallyAfterDays"] == 30


def test_missing_rotation_lambda_is_flagged_not_hidden():
    payments = dataclasses.replace(config().payments, rotation_lambda_arn=None)
    cfg = variant(subprocessors=dataclasses.replace(config().subprocessors, payments=payments))
    r = run(cfg)
    assert r.of_type("aws:secretsmanager/secretRotation:SecretRotation") == []
    assert r.named(f"{SUB}-payments-secret").tags[ROTATION_TAG] == "unconfigured"
    assert any("stripe credentials have no rotation" in w for w in r.warnings)


def test_every_taggable_subprocessor_resource_names_its_subprocessor():
    r = stack_run()
    sub = r.named(SUB)
    for child in r.children(sub):
        if child.type.startswith("aws:route53/") or child.type.endswith("SecretRotation"):
            continue  # not taggable
        assert child.tags.get(SUBPROCESSOR_TAG) in ("amazon-ses", "stripe"), child.name
