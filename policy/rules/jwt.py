"""Access tokens: short-lived, signed by a key ring whose public keys are published (JWKS)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from policy.rules import kms
from policy.rules.base import Props, Resource, number, policy_document, rule, seq, stack_rule, statements, tags_of
from stackconfig.hardening import MAX_ACCESS_TOKEN_TTL_MINUTES

PARAMETER = "aws:ssm/parameter:Parameter"
ROLE_TAG = "askasia:jwt-role"
KID_TAG = "askasia:jwt-kid"


def _json(value: Any) -> Mapping[str, Any] | None:
    if not isinstance(value, str):
        return None
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    return doc if isinstance(doc, Mapping) else None


@rule(
    "jwt-token-ttl-bounded",
    "mandatory",
    PARAMETER,
    f"The access-token policy the application reads keeps tokens at most {MAX_ACCESS_TOKEN_TTL_MINUTES} minutes.",
    "Set askasia:accessTokenTtlMinutes within the bound (stackconfig/hardening.py).",
)
def token_ttl_bounded(props: Props) -> str | None:
    doc = _json(props.get("value"))
    if doc is None or "accessTokenTtlSeconds" not in doc:
        return None  # not the access-token policy
    ttl, bound = number(doc.get("accessTokenTtlSeconds")), number(doc.get("maxAccessTokenTtlSeconds"))
    limit = MAX_ACCESS_TOKEN_TTL_MINUTES * 60
    if ttl is None or ttl <= 0:
        return f"accessTokenTtlSeconds {doc.get('accessTokenTtlSeconds')!r} is not a positive number"
    if bound is None or bound > limit:
        return f"maxAccessTokenTtlSeconds {doc.get('maxAccessTokenTtlSeconds')!r} is missing or above {limit}"
    if ttl > bound:
        return f"accessTokenTtlSeconds {ttl:g} exceeds maxAccessTokenTtlSeconds {bound:g}"
    return None


def _signs(key: Resource) -> bool:
    doc = policy_document(key.inputs.get("policy")) or {}
    return any(
        st.get("Effect") == "Allow" and {"kms:sign", "kms:*", "*"} & {str(a).lower() for a in seq(st.get("Action"))}
        for st in statements(doc)
    )


@stack_rule(
    "jwt-key-ring-published",
    "mandatory",
    kms.KEY,
    "JWT signing keys form a ring (one current, one next, at most one previous that no longer signs) "
    "and every ring key's public key is published in a JWKS document.",
    "Declare the ring from contract/jwks.py KeyRing (components/keys.py) and publish its JWKS parameter.",
)
def key_ring_published(resources: Sequence[Resource]) -> list[tuple[str, str]]:
    signing = [r for r in resources if r.type == kms.KEY and str(r.inputs.get("keyUsage")) == "SIGN_VERIFY"]
    ring = [k for k in signing if tags_of(k.inputs).get(ROLE_TAG)]
    found = [(k.name, f"a signing key outside the ring (no {ROLE_TAG} tag)") for k in signing if k not in ring]
    if not ring:
        return found
    roles = [str(tags_of(k.inputs)[ROLE_TAG]) for k in ring]
    for role, wanted in (("current", 1), ("next", 1)):
        if roles.count(role) != wanted:
            found.append(("<stack>", f"{roles.count(role)} {role} JWT key(s), want {wanted}"))
    if roles.count("previous") > 1:
        found.append(("<stack>", f"{roles.count('previous')} previous JWT keys, want at most 1"))
    for key in ring:
        if tags_of(key.inputs)[ROLE_TAG] == "previous" and _signs(key):
            found.append((key.name, "the previous JWT key may still sign (kms:Sign in its policy)"))
    published: set[str] = set()
    for param in (r for r in resources if r.type == PARAMETER):
        doc = _json(param.inputs.get("value"))
        if doc is not None and isinstance(doc.get("keys"), list):
            published |= {str(k.get("kid")) for k in doc["keys"] if isinstance(k, Mapping)}
    for key in ring:
        kid = str(tags_of(key.inputs).get(KID_TAG) or "")
        if kid not in published:
            found.append((key.name, f"kid {kid or '(none)'} is not in any published JWKS"))
    return found
