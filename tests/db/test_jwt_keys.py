"""JWT keys against moto's KMS and SSM: the JWKS the local stack publishes has the shape RFC 7517
asks and carries the keys KMS signs with (a token KMS signed verifies with it), a token signed
before a rotation still verifies after it, `provision keys status` catches a tampered JWKS, and
`provision keys rotate-jwt` rotates only when no valid token can lose its key."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from contract.jwks import KeyRing, jwk, jwks, token_policy
from provisioner import aws, jwtkeys
from tests.helpers import run_in_process
from tests.unit.mock_stacks import STACKS_DIR

REGION = "eu-west-1"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(arn: str, kid: str, claims: dict) -> str:
    """An ES256 JWT signed by KMS (as the application signs): DER signature -> JWS r||s."""
    header = {"alg": "ES256", "kid": kid, "typ": "JWT"}
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    der = aws.client("kms", REGION).sign(
        KeyId=arn, Message=signing_input.encode(), MessageType="RAW", SigningAlgorithm="ECDSA_SHA_256"
    )["Signature"]
    r, s = decode_dss_signature(der)
    return f"{signing_input}.{b64url(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


def verifies(token: str, document: dict) -> bool:
    """What a verifier does with the JWKS: find the header's kid, check the signature."""
    head, body, signature = token.split(".")
    kid = json.loads(unb64url(head))["kid"]
    key = next((k for k in document["keys"] if k["kid"] == kid), None)
    if key is None:
        return False
    x, y = (int.from_bytes(unb64url(key[c]), "big") for c in ("x", "y"))
    public = ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key()
    raw = unb64url(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    try:
        public.verify(der, f"{head}.{body}".encode(), ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def parameter(name: str) -> dict:
    return json.loads(aws.client("ssm", REGION).get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"])


def test_the_local_jwks_has_the_rfc_shape_and_verifies_a_token_kms_signed(outputs):
    document = parameter(outputs.jwt["jwks_parameter"])
    policy = parameter(outputs.jwt["config_parameter"])
    assert set(document) == {"keys"} and [k["kid"] for k in document["keys"]] == ["local-jwt-1", "local-jwt-2"]
    for key in document["keys"]:
        assert set(key) == {"kty", "crv", "x", "y", "kid", "alg", "use"}
        assert (key["kty"], key["crv"], key["alg"], key["use"]) == ("EC", "P-256", "ES256", "sig")
        assert len(unb64url(key["x"])) == len(unb64url(key["y"])) == 32 and "=" not in key["x"] + key["y"]
    assert policy["signingKid"] == "local-jwt-1" and policy["signingKeyArn"] == outputs.kms["jwt_signing"]
    token = sign(policy["signingKeyArn"], policy["signingKid"], {"sub": "tenant-a", "exp": 1})
    assert verifies(token, document)
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert not verifies(tampered, document)
    assert jwtkeys.ring_status(outputs).problems == []


def test_a_token_signed_before_a_rotation_verifies_after_it(local_stack):
    """Keys of three generations in moto, the JWKS of each ring built as the program builds it."""
    kms = aws.client("kms", REGION)
    arns = {
        g: kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"] for g in range(1, 5)
    }

    def published(ring: KeyRing) -> dict:
        return jwks(
            [
                jwk(kms.get_public_key(KeyId=arns[g])["PublicKey"], ring.kid(g), "ECC_NIST_P256")
                for g in ring.generations.values()
            ]
        )

    first, second, third = KeyRing("rot", 1), KeyRing("rot", 2), KeyRing("rot", 3)
    by_first = sign(arns[1], first.kid(1), {"sub": "a"})
    assert verifies(by_first, published(first)) and verifies(by_first, published(second))
    by_second = sign(arns[2], second.kid(2), {"sub": "a"})
    assert verifies(by_second, published(first))  # next was published before it ever signed
    assert verifies(by_second, published(third))
    # The key two rotations back is gone: why rotations are at least a token lifetime apart.
    assert not verifies(by_first, published(third))


# -- the commands ----------------------------------------------------------------------------


def test_status_passes_on_the_local_stack_and_catches_a_tampered_jwks(local_stack, outputs, capsys, monkeypatch):
    monkeypatch.setenv("ASKASIA_LOCAL_DIR", str(local_stack.root))
    code, out, _ = run_in_process(["keys", "status", "--stack", "local"], capsys, monkeypatch)
    assert code == 0 and "signing with local-jwt-1" in out
    ssm = aws.client("ssm", REGION)
    name = outputs.jwt["jwks_parameter"]
    original = ssm.get_parameter(Name=name)["Parameter"]["Value"]
    document = json.loads(original)
    document["keys"][1]["x"] = document["keys"][0]["x"]  # another key's material under the next kid
    document["keys"].append({**document["keys"][0], "kid": "planted"})
    ssm.put_parameter(Name=name, Value=json.dumps(document), Type="String", Overwrite=True)
    try:
        code, out, err = run_in_process(["keys", "status", "--stack", "local", "--json"], capsys, monkeypatch)
        problems = json.loads(out)["problems"]
        assert code == 1 and "problem(s) in the published JWT key ring" in err
        assert any("kid local-jwt-2: the published key is not the public key KMS holds" in p for p in problems)
        assert "the JWKS publishes kid planted, which is no key of the ring" in problems
    finally:
        ssm.put_parameter(Name=name, Value=original, Type="String", Overwrite=True)
    assert jwtkeys.ring_status(outputs).ok


@pytest.fixture()
def deployed(outputs, tmp_path):
    """prod-eu-west-1's ring at generation 1 as if deployed (in moto), its outputs file and a
    copy of its stack file."""
    stack, kms, ssm = "prod-eu-west-1", aws.client("kms", REGION), aws.client("ssm", REGION)
    ring = KeyRing(stack, 1)
    arns = {
        kid: kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
        for kid in ring.kids.values()
    }
    names = {"jwks_parameter": f"/askasia/{stack}/auth/jwks", "config_parameter": f"/askasia/{stack}/auth/jwt"}
    keys = [jwk(kms.get_public_key(KeyId=arn)["PublicKey"], kid, "ECC_NIST_P256") for kid, arn in arns.items()]
    policy = token_policy(
        issuer="https://auth.example",
        ring=ring,
        key_arns=arns,
        key_spec="ECC_NIST_P256",
        ttl_seconds=900,
        max_ttl_seconds=3600,
        jwks_parameter=names["jwks_parameter"],
    )
    ssm.put_parameter(Name=names["jwks_parameter"], Value=json.dumps(jwks(keys)), Type="String", Overwrite=True)
    ssm.put_parameter(Name=names["config_parameter"], Value=json.dumps(policy), Type="SecureString", Overwrite=True)
    outputs_file = tmp_path / "outputs.json"
    outputs_file.write_text(json.dumps({**outputs.to_json(), "stack": stack, "jwt": names}))
    stacks = tmp_path / "stacks"
    stacks.mkdir()
    shutil.copy(STACKS_DIR / f"Pulumi.{stack}.yaml", stacks)
    return stack, outputs_file, stacks


def test_rotation_waits_for_the_ring_then_raises_the_generation(deployed, capsys, monkeypatch):
    stack, outputs_file, stacks = deployed
    args = ["keys", "rotate-jwt", "--stack", stack, "--outputs", str(outputs_file), "--stacks-dir", str(stacks)]
    code, _, err = run_in_process(args, capsys, monkeypatch)
    assert code == 2 and "rotation refused: the ring last changed at" in err  # next not yet in every cache
    later = jwtkeys.utcnow() + dt.timedelta(minutes=6)
    monkeypatch.setattr(jwtkeys, "utcnow", lambda: later)
    code, out, err = run_in_process(args, capsys, monkeypatch)
    assert code == 0, err
    assert "askasia:jwtKeyGeneration 1 -> 2" in out and f"{stack}-jwt-2 signs" in out
    text = (stacks / f"Pulumi.{stack}.yaml").read_text()
    assert "  askasia:jwtKeyGeneration: 2\n" in text and text.startswith("# Production, Ireland.")
    # Not deployed yet: a second rotation would drop the key still signing.
    code, _, err = run_in_process(args, capsys, monkeypatch)
    assert code == 2 and "deployed ring is at generation 1, the stack config at 2" in err


def test_rotation_of_the_local_stack_or_a_broken_ring_is_refused(deployed, capsys, monkeypatch):
    code, _, err = run_in_process(["keys", "rotate-jwt", "--stack", "local"], capsys, monkeypatch)
    assert code == 2 and "rotate a deployed stack" in err
    stack, outputs_file, stacks = deployed
    aws.client("ssm", REGION).put_parameter(
        Name=f"/askasia/{stack}/auth/jwks", Value=json.dumps({"keys": []}), Type="String", Overwrite=True
    )
    args = ["keys", "rotate-jwt", "--stack", stack, "--outputs", str(outputs_file), "--stacks-dir", str(stacks)]
    code, _, err = run_in_process(args, capsys, monkeypatch)
    assert code == 2 and f"the published ring has problems: kid {stack}-jwt-1 is not published" in err
    assert "jwtKeyGeneration" not in Path(stacks / f"Pulumi.{stack}.yaml").read_text()
