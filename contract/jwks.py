"""JWT signing keys: the key ring a stack publishes, and its public keys as a JWKS document.

Shared by the Pulumi program (which declares the ring's KMS keys and publishes the JWKS), the
local stack (which does the same in moto) and `provision keys` (which checks what is published
and rotates). Dependency-free: the two key specs a stack may choose have fixed DER layouts
(SubjectPublicKeyInfo as KMS GetPublicKey returns it), read here exactly or refused.

The ring at generation G: `current` (G) signs, `next` (G+1) is published before it ever signs,
so verifiers hold it when it is promoted; `previous` (G-1) only verifies the tokens it signed
before the last rotation, for their lifetime. Rotation is G -> G+1: next signs, current becomes
previous, a new next is published, the old previous goes. Rotations at least one token lifetime
(and one JWKS refresh) apart mean no valid token ever meets a JWKS without its key.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

# KeySpec -> (KMS signing algorithm, JWS "alg")
JWT_ALGORITHMS = {
    "ECC_NIST_P256": ("ECDSA_SHA_256", "ES256"),
    "RSA_2048": ("RSASSA_PKCS1_V1_5_SHA_256", "RS256"),
}
# Verifiers (the application) re-read the JWKS at least this often.
JWKS_REFRESH_SECONDS = 300

_P256_PREFIX = bytes.fromhex("3059301306072a8648ce3d020106082a8648ce3d03010703420004")
_RSA2048_PREFIX = bytes.fromhex("30820122300d06092a864886f70d01010105000382010f003082010a0282010100")
_RSA_EXPONENT_65537 = bytes.fromhex("0203010001")

ROLES = ("previous", "current", "next")


class KeyInvalid(ValueError):
    """A public key that is not the key spec's SubjectPublicKeyInfo."""


@dataclass(frozen=True)
class KeyRing:
    stack: str
    generation: int  # the current key's

    def __post_init__(self) -> None:
        if self.generation < 1:
            raise ValueError(f"key generation must be at least 1, got {self.generation}")

    def kid(self, generation: int) -> str:
        return f"{self.stack}-jwt-{generation}"

    @property
    def generations(self) -> dict[str, int]:
        """role -> generation, previous only once there has been a rotation."""
        ring = {"current": self.generation, "next": self.generation + 1}
        return {"previous": self.generation - 1, **ring} if self.generation > 1 else ring

    @property
    def kids(self) -> dict[str, str]:
        return {role: self.kid(g) for role, g in self.generations.items()}

    def rotated(self) -> KeyRing:
        return KeyRing(self.stack, self.generation + 1)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk(spki_der: bytes, kid: str, key_spec: str) -> dict[str, str]:
    """The public JWK (RFC 7517/7518) of a KMS public key."""
    _, alg = JWT_ALGORITHMS.get(key_spec, (None, None))
    if alg is None:
        raise KeyInvalid(f"key spec {key_spec!r} is not one of {', '.join(JWT_ALGORITHMS)}")
    if key_spec == "ECC_NIST_P256":
        if len(spki_der) != len(_P256_PREFIX) + 64 or not spki_der.startswith(_P256_PREFIX):
            raise KeyInvalid(f"kid {kid}: not an uncompressed P-256 SubjectPublicKeyInfo")
        point = spki_der[len(_P256_PREFIX) :]
        return {"kty": "EC", "crv": "P-256", "x": _b64url(point[:32]), "y": _b64url(point[32:]), **_use(kid, alg)}
    size = len(_RSA2048_PREFIX) + 256 + len(_RSA_EXPONENT_65537)
    if len(spki_der) != size or not spki_der.startswith(_RSA2048_PREFIX) or not spki_der.endswith(_RSA_EXPONENT_65537):
        raise KeyInvalid(f"kid {kid}: not an RSA-2048 SubjectPublicKeyInfo with exponent 65537")
    modulus = spki_der[len(_RSA2048_PREFIX) : len(_RSA2048_PREFIX) + 256]
    return {"kty": "RSA", "n": _b64url(modulus), "e": _b64url(b"\x01\x00\x01"), **_use(kid, alg)}


def _use(kid: str, alg: str) -> dict[str, str]:
    return {"kid": kid, "alg": alg, "use": "sig"}


def jwks(keys: list[dict[str, str]]) -> dict[str, Any]:
    """A JWK Set, keys in ring order (previous, current, next)."""
    kids = [k["kid"] for k in keys]
    if len(set(kids)) != len(kids):
        raise KeyInvalid(f"a kid appears twice in {kids}")
    return {"keys": keys}


def token_policy(
    *,
    issuer: str,
    ring: KeyRing,
    key_arns: dict[str, str],
    key_spec: str,
    ttl_seconds: int,
    max_ttl_seconds: int,
    jwks_parameter: str,
) -> dict[str, Any]:
    """The access-token policy the application reads: which key signs (its ARN and kid), with
    what algorithm, for how long, and where the verification keys are. `key_arns`: kid -> ARN."""
    kms_algorithm, alg = JWT_ALGORITHMS[key_spec]
    current = ring.kid(ring.generation)
    return {
        "issuer": issuer,
        # Sign with this ARN and put this kid in the header: never an alias, which can move apart
        # from this document during a rotation.
        "signingKeyArn": key_arns[current],
        "signingKid": current,
        "keyGeneration": ring.generation,
        "keys": {kid: key_arns[kid] for kid in ring.kids.values()},
        "kmsSigningAlgorithm": kms_algorithm,
        "alg": alg,
        "accessTokenTtlSeconds": ttl_seconds,
        "maxAccessTokenTtlSeconds": max_ttl_seconds,
        "jwksParameter": jwks_parameter,
        "jwksRefreshSeconds": JWKS_REFRESH_SECONDS,
    }
