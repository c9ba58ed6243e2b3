"""The JWT key ring as deployed: what the application reads (the token policy and the JWKS in
SSM), checked against KMS, and the one safe step of a rotation.

`ring_status` reads both parameters the stack outputs name and proves the JWKS carries exactly
the public key KMS holds for every key of the ring, that the signing kid is one of them and
that the token lifetime stays inside its bound. `rotation_refusal` says why a rotation would
let a valid token meet a JWKS without its key (contract/jwks.py), or None when it would not.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from contract.jwks import JWKS_REFRESH_SECONDS, KeyInvalid, jwk
from contract.outputs import StackOutputs
from provisioner import aws
from provisioner.errors import ProvisionError
from stackconfig.hardening import MAX_ACCESS_TOKEN_TTL_MINUTES

CHECK = "jwks-published"  # the evidence report's name for this check (compliance/promises.yaml)
MATERIAL = ("kty", "crv", "x", "y", "n", "e", "alg")


@dataclass
class RingStatus:
    stack: str
    generation: int | None = None
    signing_kid: str | None = None
    kids: list[str] = field(default_factory=list)  # the ring, in order: previous, current, next
    published: list[str] = field(default_factory=list)  # kids in the JWKS
    ttl_seconds: int | None = None
    policy_changed_at: dt.datetime | None = None  # when the token policy last changed (a rotation)
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        return {
            "stack": self.stack,
            "ok": self.ok,
            "generation": self.generation,
            "signing_kid": self.signing_kid,
            "kids": self.kids,
            "published": self.published,
            "ttl_seconds": self.ttl_seconds,
            "policy_changed_at": self.policy_changed_at.isoformat() if self.policy_changed_at else None,
            "problems": self.problems,
        }


def _parameter(ssm: Any, name: str) -> tuple[dict[str, Any], dt.datetime]:
    try:
        found = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        raise ProvisionError(f"cannot read parameter {name}: {exc.response['Error']['Code']}") from None
    except BotoCoreError as exc:
        raise ProvisionError(f"cannot read parameter {name}: {exc}") from None
    try:
        doc = json.loads(found["Value"])
    except json.JSONDecodeError:
        raise ProvisionError(f"parameter {name} is not JSON") from None
    if not isinstance(doc, dict):
        raise ProvisionError(f"parameter {name} is not a JSON object")
    return doc, found["LastModifiedDate"].astimezone(dt.UTC)


def ring_status(outputs: StackOutputs) -> RingStatus:
    """Read and judge the published ring; a parameter that cannot be read at all raises."""
    ssm, kms = aws.client("ssm", outputs.region), aws.client("kms", outputs.region)
    policy, changed = _parameter(ssm, outputs.jwt["config_parameter"])
    published_doc, _ = _parameter(ssm, outputs.jwt["jwks_parameter"])
    named = policy.get("keys")
    keys: dict[str, str] = named if isinstance(named, dict) else {}
    status = RingStatus(
        stack=outputs.stack,
        generation=policy.get("keyGeneration"),
        signing_kid=policy.get("signingKid"),
        kids=list(keys),
        ttl_seconds=policy.get("accessTokenTtlSeconds"),
        policy_changed_at=changed,
    )
    jwks = {str(k.get("kid")): k for k in published_doc.get("keys") or [] if isinstance(k, dict)}
    status.published = list(jwks)
    if len(keys) < 2:
        status.problems.append(f"the token policy names {len(keys)} key(s): a ring has a current and a next key")
    if status.signing_kid not in keys:
        status.problems.append(f"the signing kid {status.signing_kid!r} is not a key of the ring")
    elif policy.get("signingKeyArn") != keys[status.signing_kid]:
        status.problems.append(f"signingKeyArn is not the ARN of kid {status.signing_kid}")
    for kid, arn in keys.items():
        if kid not in jwks:
            status.problems.append(f"kid {kid} is not published in {outputs.jwt['jwks_parameter']}")
            continue
        try:
            key = kms.get_public_key(KeyId=arn)
            # KeySpec, and the older CustomerMasterKeySpec that moto still answers with alone
            expected = jwk(key["PublicKey"], kid, key.get("KeySpec") or key["CustomerMasterKeySpec"])
        except (ClientError, BotoCoreError, KeyInvalid) as exc:
            status.problems.append(f"kid {kid}: cannot read its public key from KMS ({exc})")
            continue
        if any(jwks[kid].get(f) != expected.get(f) for f in MATERIAL):
            status.problems.append(f"kid {kid}: the published key is not the public key KMS holds for {arn}")
    for kid in sorted(jwks.keys() - keys.keys()):
        status.problems.append(f"the JWKS publishes kid {kid}, which is no key of the ring")
    bound = MAX_ACCESS_TOKEN_TTL_MINUTES * 60
    ttl, max_ttl = status.ttl_seconds, policy.get("maxAccessTokenTtlSeconds")
    if not isinstance(ttl, int) or not isinstance(max_ttl, int) or not 0 < ttl <= max_ttl <= bound:
        status.problems.append(f"token lifetime {ttl!r}s (bound {max_ttl!r}s) is not within 1..{bound}s")
    return status


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def rotation_refusal(status: RingStatus, configured: int, now: dt.datetime) -> str | None:
    """Why promoting next now could leave a valid token without its key, or None.

    The key a rotation drops (previous) stopped signing when the token policy last changed;
    its tokens live at most the lifetime bound after that. The key it promotes (next) was
    published at that same change; verifiers re-read the JWKS within JWKS_REFRESH_SECONDS.
    """
    if not status.ok:
        return f"the published ring has problems: {status.problems[0]}"
    if status.generation != configured:
        return (
            f"the deployed ring is at generation {status.generation}, the stack config at {configured}: "
            "deploy the pending rotation (pulumi up) before the next one"
        )
    wait = dt.timedelta(seconds=JWKS_REFRESH_SECONDS)
    if configured > 1:  # a previous key exists and would be dropped
        wait = max(wait, dt.timedelta(seconds=MAX_ACCESS_TOKEN_TTL_MINUTES * 60))
    ready = (status.policy_changed_at or now) + wait
    if now < ready:
        return (
            f"the ring last changed at {status.policy_changed_at:%Y-%m-%d %H:%M:%S}Z; rotate after "
            f"{ready:%H:%M:%S}Z, when every token the dropped key signed has expired and every "
            "verifier holds the key being promoted"
        )
    return None
