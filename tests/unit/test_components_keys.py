"""KMS keys: rotation, customer-managed per purpose, explicit policies without open principals."""

from __future__ import annotations

import json

import pytest

from components.keys import KeysArgs
from contract.kms import SYMMETRIC_PURPOSES
from tests.unit.mock_stacks import as_list, key, key_arn, policy, run, stack_run, statements, variant

CRYPTO_PREFIXES = (
    "kms:Encrypt",
    "kms:Decrypt",
    "kms:ReEncrypt",
    "kms:GenerateDataKey",
    "kms:Sign",
    "kms:CreateGrant",
    "kms:*",
)


def is_crypto(action: str) -> bool:
    return action.startswith(CRYPTO_PREFIXES)


@pytest.mark.parametrize("purpose", SYMMETRIC_PURPOSES)
def test_symmetric_keys_rotate_and_are_customer_managed(purpose):
    k = key(stack_run(), purpose)
    assert k.inputs["enableKeyRotation"] is True
    assert k.inputs["keyUsage"] == "ENCRYPT_DECRYPT"
    assert k.inputs["customerMasterKeySpec"] == "SYMMETRIC_DEFAULT"
    assert k.inputs["deletionWindowInDays"] == 30
    assert k.inputs["multiRegion"] is (purpose == "backup")


def test_jwt_key_is_asymmetric_sign_verify():
    k = key(stack_run(), "jwt_signing")
    assert k.inputs["keyUsage"] == "SIGN_VERIFY"
    assert k.inputs["customerMasterKeySpec"] == "ECC_NIST_P256"
    # KMS cannot rotate asymmetric keys; asking would fail the deployment.
    assert k.inputs["enableKeyRotation"] is False
    sign = [s for s in statements(policy(k)) if "kms:Sign" in as_list(s["Action"])]
    assert sign and sign[0]["Condition"]["StringEquals"]["kms:SigningAlgorithm"] == "ECDSA_SHA_256"


def test_rsa_jwt_key_when_chosen():
    r = run(variant(jwt_key_spec="RSA_2048"))
    k = key(r, "jwt_signing")
    assert k.inputs["customerMasterKeySpec"] == "RSA_2048"
    sign = [s for s in statements(policy(k)) if "kms:Sign" in as_list(s["Action"])]
    assert sign[0]["Condition"]["StringEquals"]["kms:SigningAlgorithm"] == "RSASSA_PKCS1_V1_5_SHA_256"
    params = json.loads(r.one("aws:ssm/parameter:Parameter", "jwt-config").inputs["value"])
    assert params["alg"] == "RS256"


@pytest.mark.parametrize("purpose", [*SYMMETRIC_PURPOSES, "jwt_signing"])
def test_key_policies_have_no_open_principal_and_condition_every_use(purpose):
    doc = policy(key(stack_run(), purpose))
    assert doc["Version"] == "2012-10-17"
    for st in statements(doc):
        principal = st["Principal"]
        assert principal != "*" and "*" not in as_list(principal.get("AWS", [])), st["Sid"]
        if st["Sid"] == "AccountAdministersKey":
            assert principal == {"AWS": "arn:aws:iam::123456789012:root"}
            assert not [a for a in as_list(st["Action"]) if is_crypto(a)], "admin statement grants use"
            continue
        if any(is_crypto(a) for a in as_list(st["Action"])):
            assert st.get("Condition"), f"{purpose}/{st['Sid']} allows use without a condition"


@pytest.mark.parametrize(
    ("purpose", "service"),
    [
        ("data", "rds.eu-west-1.amazonaws.com"),
        ("backup", "backup.eu-west-1.amazonaws.com"),
        ("secrets", "secretsmanager.eu-west-1.amazonaws.com"),
        ("logs", "s3.eu-west-1.amazonaws.com"),
    ],
)
def test_use_is_scoped_to_the_service_that_needs_it(purpose, service):
    doc = policy(key(stack_run(), purpose))
    use = next(s for s in statements(doc) if s["Sid"] == "UseThroughServices")
    assert service in use["Condition"]["StringEquals"]["kms:ViaService"]
    assert use["Condition"]["StringEquals"]["kms:CallerAccount"] == "123456789012"
    grant = next(s for s in statements(doc) if s["Sid"] == "GrantToServices")
    assert grant["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_logs_key_lets_cloudwatch_cloudtrail_and_eventbridge_in_with_conditions():
    doc = policy(key(stack_run(), "logs"))
    by_service = {s["Principal"].get("Service"): s for s in statements(doc) if "Service" in s["Principal"]}
    logs = by_service["logs.eu-west-1.amazonaws.com"]
    assert logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"] == (
        "arn:aws:logs:eu-west-1:123456789012:log-group:*"
    )
    trail = next(s for s in statements(doc) if s["Sid"] == "CloudTrailEncryptsLogs")
    assert trail["Condition"]["StringLike"]["kms:EncryptionContext:aws:cloudtrail:arn"].startswith(
        "arn:aws:cloudtrail:*:123456789012:trail/"
    )
    events = by_service["events.amazonaws.com"]
    assert "kms:GenerateDataKey*" in events["Action"]
    assert events["Condition"]["StringEquals"]["aws:SourceAccount"] == "123456789012"


def test_aliases_name_each_key():
    r = stack_run()
    aliases = {a.inputs["name"]: a for a in r.of_type("aws:kms/alias:Alias")}
    for purpose in (*SYMMETRIC_PURPOSES, "jwt-signing"):
        alias = aliases[f"alias/askasia/prod-eu-west-1/{purpose}"]
        assert alias.inputs["targetKeyId"] == key(r, purpose.replace("-", "_")).outputs["keyId"]


def test_backup_key_has_a_replica_in_the_dr_region():
    r = stack_run()
    replica = r.one("aws:kms/replicaKey:ReplicaKey")
    assert replica.region == "eu-central-1"
    assert replica.inputs["primaryKeyArn"] == key_arn(r, "backup")
    assert replica.outputs["arn"].startswith("arn:aws:kms:eu-central-1:123456789012:key/mrk-")
    use = next(s for s in statements(policy(replica)) if s["Sid"] == "UseThroughServices")
    assert "backup.eu-central-1.amazonaws.com" in use["Condition"]["StringEquals"]["kms:ViaService"]


def test_access_token_policy_is_published_encrypted():
    r = stack_run()
    param = r.one("aws:ssm/parameter:Parameter", "jwt-config")
    assert param.inputs["name"] == "/askasia/prod-eu-west-1/auth/jwt"
    assert param.inputs["type"] == "SecureString"
    assert param.inputs["keyId"] == key_arn(r, "secrets")
    assert "value" in param.secret_inputs
    published = json.loads(param.inputs["value"])
    assert published["accessTokenTtlSeconds"] == 15 * 60
    assert published["maxAccessTokenTtlSeconds"] == 60 * 60
    assert published["signingKeyArn"] == key_arn(r, "jwt_signing")
    assert published["alg"] == "ES256"


def test_token_ttl_follows_config():
    param = run(variant(access_token_ttl_minutes=5)).one("aws:ssm/parameter:Parameter", "jwt-config")
    assert json.loads(param.inputs["value"])["accessTokenTtlSeconds"] == 300


@pytest.mark.parametrize("ttl", [0, 61, 24 * 60])
def test_keys_args_refuse_long_lived_tokens(ttl):
    with pytest.raises(ValueError, match="access_token_ttl_minutes"):
        KeysArgs(
            stack="s",
            region="eu-west-1",
            account_id="123456789012",
            partition="aws",
            jwt_issuer="https://auth.example",
            access_token_ttl_minutes=ttl,
        )
