"""JWT keys that rotate: the ring under the SDK's mocks (two signing keys, a previous one that
only verifies, the JWKS the application reads), the promise that no valid token meets a JWKS
without its key across a rotation, and the JWK encoding checked against `cryptography`."""

from __future__ import annotations

import base64
import json

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from contract.jwks import KeyInvalid, KeyRing, jwk, jwks
from offline.mockrun import MockResource, MockRun
from policy.engine import check_stack
from policy.rules import STACK_RULES, Resource
from tests.unit.mock_stacks import as_list, policy, run, statements, variant

STACK = "prod-eu-west-1"


def ring_keys(r: MockRun) -> dict[str, MockResource]:
    return {k.tags["askasia:jwt-role"]: k for k in r.of_type("aws:kms/key:Key") if "askasia:jwt-role" in k.tags}


def published(r: MockRun) -> list[dict]:
    return json.loads(r.one("aws:ssm/parameter:Parameter", "jwks").inputs["value"])["keys"]


def token_policy(r: MockRun) -> dict:
    return json.loads(r.one("aws:ssm/parameter:Parameter", "jwt-config").inputs["value"])


def signs(key: MockResource) -> bool:
    return any("kms:Sign" in as_list(s["Action"]) for s in statements(policy(key)))


def at(generation: int) -> MockRun:
    return run(variant(STACK, jwt_key_generation=generation))


def test_a_new_stack_has_a_current_and_a_next_key_both_published():
    r = at(1)
    keys = ring_keys(r)
    assert sorted(keys) == ["current", "next"]
    assert {role: k.tags["askasia:jwt-kid"] for role, k in keys.items()} == {
        "current": f"{STACK}-jwt-1",
        "next": f"{STACK}-jwt-2",
    }
    assert all(signs(k) and k.inputs["keyUsage"] == "SIGN_VERIFY" for k in keys.values())
    assert [k["kid"] for k in published(r)] == [f"{STACK}-jwt-1", f"{STACK}-jwt-2"]
    assert all(
        k["kty"] == "EC" and k["crv"] == "P-256" and k["alg"] == "ES256" and k["use"] == "sig" for k in published(r)
    )
    doc = token_policy(r)
    assert doc["signingKid"] == f"{STACK}-jwt-1" and doc["signingKeyArn"] == keys["current"].outputs["arn"]
    assert doc["keys"] == {k.tags["askasia:jwt-kid"]: k.outputs["arn"] for k in keys.values()}
    assert doc["jwksParameter"] == f"/askasia/{STACK}/auth/jwks"
    assert doc["accessTokenTtlSeconds"] == 15 * 60 and doc["maxAccessTokenTtlSeconds"] == 60 * 60
    # the JWKS is written before the signing key changes, within one update
    jwks_param = r.one("aws:ssm/parameter:Parameter", "jwks")
    assert jwks_param.urn in r.one("aws:ssm/parameter:Parameter", "jwt-config").dependencies
    assert jwks_param.inputs["type"] == "String"  # public keys: no secret
    assert r.outputs["kms"]["jwt_signing"] == keys["current"].outputs["arn"]


def test_after_a_rotation_the_previous_key_verifies_but_cannot_sign():
    keys = ring_keys(at(3))
    assert {role: k.name for role, k in keys.items()} == {
        "previous": f"{STACK}-keys-jwt-2",
        "current": f"{STACK}-keys-jwt-3",
        "next": f"{STACK}-keys-jwt-4",
    }
    assert not signs(keys["previous"]) and signs(keys["current"]) and signs(keys["next"])
    verify = [s for s in statements(policy(keys["previous"])) if "kms:GetPublicKey" in as_list(s["Action"])]
    assert verify, "the previous key still publishes its public key"
    assert [k["kid"] for k in published(at(3))] == [f"{STACK}-jwt-{g}" for g in (2, 3, 4)]


@pytest.mark.parametrize("generation", [1, 2, 7])
def test_no_valid_token_meets_a_jwks_without_its_key_across_a_rotation(generation: int):
    before, after = at(generation), at(generation + 1)
    old, new = ring_keys(before), ring_keys(after)
    # Every key that could have signed a token before the rotation is published after it.
    could_sign = {k.tags["askasia:jwt-kid"] for k in old.values() if signs(k)}
    assert could_sign <= {k["kid"] for k in published(after)}
    # The key that signs after the rotation was published (as next) before it, and it is the
    # same key: the same logical name, so the engine updates its tags and policy, never replaces it.
    assert new["current"].name == old["next"].name
    assert new["current"].tags["askasia:jwt-kid"] in {k["kid"] for k in published(before)}
    assert token_policy(after)["signingKid"] == old["next"].tags["askasia:jwt-kid"]
    # What the rotation drops never signed after the previous rotation.
    dropped = {k["kid"] for k in published(before)} - {k["kid"] for k in published(after)}
    assert dropped.isdisjoint(could_sign)
    assert new["previous"].name == old["current"].name


def test_rsa_keys_publish_rsa_jwks():
    r = run(variant(STACK, jwt_key_spec="RSA_2048"))
    for key in published(r):
        assert key["kty"] == "RSA" and key["alg"] == "RS256" and key["e"] == "AQAB"
        assert len(base64.urlsafe_b64decode(key["n"] + "==")) == 256


# -- the policy rule over the ring --------------------------------------------------------------


def ring_rule() -> list:
    return [r for r in STACK_RULES if r.id == "jwt-key-ring-published"]


def as_resources(r: MockRun) -> list[Resource]:
    return [Resource(x.type, x.name, x.inputs, x.outputs) for x in r.resources if x.custom]


def test_the_declared_ring_passes_the_rule():
    assert check_stack(as_resources(at(2)), ring_rule()) == []


def test_a_previous_key_that_still_signs_or_an_unpublished_kid_fails_the_rule():
    resources = as_resources(at(2))
    broken = []
    for res in resources:
        if res.type == "aws:kms/key:Key" and res.inputs.get("tags", {}).get("askasia:jwt-role") == "previous":
            current = next(x for x in resources if x.inputs.get("tags", {}).get("askasia:jwt-role") == "current")
            res = Resource(res.type, res.name, {**res.inputs, "policy": current.inputs["policy"]})
        if res.name.endswith("-jwks"):
            doc = json.loads(res.inputs["value"])
            doc["keys"] = doc["keys"][1:]  # the previous key no longer published
            res = Resource(res.type, res.name, {**res.inputs, "value": json.dumps(doc)})
        broken.append(res)
    found = {(v.resource_name, v.message) for v in check_stack(broken, ring_rule())}
    assert found == {
        (f"{STACK}-keys-jwt-1", "the previous JWT key may still sign (kms:Sign in its policy)"),
        (f"{STACK}-keys-jwt-1", f"kid {STACK}-jwt-1 is not in any published JWKS"),
    }


def test_two_current_keys_or_a_signing_key_outside_the_ring_fail_the_rule():
    resources = as_resources(at(1))
    retagged = [
        Resource(r.type, r.name, {**r.inputs, "tags": {**r.inputs["tags"], "askasia:jwt-role": "current"}})
        if r.inputs.get("tags", {}).get("askasia:jwt-role") == "next"
        else r
        for r in resources
    ]
    stray = Resource("aws:kms/key:Key", "stray", {"keyUsage": "SIGN_VERIFY", "tags": {}})
    messages = [v.message for v in check_stack([*retagged, stray], ring_rule())]
    assert "2 current JWT key(s), want 1" in messages and "0 next JWT key(s), want 1" in messages
    assert "a signing key outside the ring (no askasia:jwt-role tag)" in messages


# -- the JWK encoding --------------------------------------------------------------------------


def spki(public_key) -> bytes:
    return public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def b64int(text: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), "big")


def test_ec_and_rsa_jwks_carry_the_key_cryptography_reads():
    ec_key = ec.generate_private_key(ec.SECP256R1()).public_key()
    got = jwk(spki(ec_key), "k1", "ECC_NIST_P256")
    numbers = ec_key.public_numbers()
    assert (b64int(got["x"]), b64int(got["y"])) == (numbers.x, numbers.y)
    assert len(got["x"]) == len(got["y"]) == 43  # 32 bytes, unpadded base64url
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    got = jwk(spki(rsa_key), "k2", "RSA_2048")
    assert (b64int(got["n"]), b64int(got["e"])) == (rsa_key.public_numbers().n, 65537)


def test_other_keys_are_refused():
    p384 = spki(ec.generate_private_key(ec.SECP384R1()).public_key())
    with pytest.raises(KeyInvalid, match="not an uncompressed P-256"):
        jwk(p384, "k", "ECC_NIST_P256")
    rsa3072 = spki(rsa.generate_private_key(public_exponent=65537, key_size=3072).public_key())
    with pytest.raises(KeyInvalid, match="not an RSA-2048"):
        jwk(rsa3072, "k", "RSA_2048")
    with pytest.raises(KeyInvalid, match="key spec 'HMAC_256'"):
        jwk(b"", "k", "HMAC_256")
    with pytest.raises(KeyInvalid, match="appears twice"):
        jwks([{"kid": "a"}, {"kid": "a"}])
    with pytest.raises(ValueError, match="at least 1"):
        KeyRing("s", 0)
