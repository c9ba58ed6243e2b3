"""Whether each tenant's or partner's credentials work: its secret (AWSCURRENT) exists, is a
credentials document naming one of its two logins (the app role or its rotation twin), was set
by the tool (the ledger's credentials row records the version), and the database accepts it.
Apply reports what it finds (a tenant left silently broken is the failure this prevents);
rotate-credentials repairs it.

The cheap part needs no round trip per tenant: one paginated ListSecrets (a call per hundred
secrets) against the versions the ledger page already read. A password changed inside the
database (any role may ALTER ROLE itself PASSWORD) leaves no trace a non-superuser can read
(pg_authid is the superuser's), so finding it takes a login: `--check-logins`.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from contract.outputs import Cluster
from provisioner import aws
from provisioner.connect import BATCH_SECRETS, Credentials, LoginRefused, connect
from provisioner.credentials import secret_name
from provisioner.errors import ProvisionError
from provisioner.names import PartnerNames, TenantNames, twin_of

LOGIN_TESTS = 4  # logins tested at once per cell
MISSING = "its secret is missing"
REPAIR = "provision {kind}s rotate-credentials --stack {stack} --{kind} {id}"


@dataclass(frozen=True)
class Owner:
    kind: str  # tenant | partner
    id: str

    @property
    def app_role(self) -> str:
        return TenantNames(self.id).app_role if self.kind == "tenant" else PartnerNames(self.id).app_role

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.id}"


def judge(owner: Owner, value: dict | None, error: str | None) -> tuple[str | None, str | None, str | None]:
    """(current login or None, current version or None, why it needs repair or None)."""
    if value is None:
        return None, None, error or MISSING
    version = value.get("VersionId")
    try:
        doc = json.loads(value["SecretString"])
        user, password = doc["username"], doc["password"]
    except (KeyError, TypeError, json.JSONDecodeError):
        return None, version, "its secret is not a credentials document"
    logins = (owner.app_role, twin_of(owner.app_role))
    if user not in logins or not isinstance(password, str) or not password:
        return None, version, f"its secret names {user!r}, not one of its logins"
    return user, version, None


def read_current(region: str, stack: str, owners: list[Owner]) -> dict[str, tuple[dict | None, str | None]]:
    """Owner key -> (AWSCURRENT value or None, why none), in BatchGetSecretValue calls of 20."""
    sm = aws.client("secretsmanager", region)
    by_name = {secret_name(stack, o.kind, o.id): o for o in owners}
    out: dict[str, tuple[dict | None, str | None]] = {o.key: (None, MISSING) for o in owners}
    names = list(by_name)
    for i in range(0, len(names), BATCH_SECRETS):
        answer = sm.batch_get_secret_value(SecretIdList=names[i : i + BATCH_SECRETS])
        for value in answer.get("SecretValues", []):
            out[by_name[value["Name"]].key] = (value, None)
        for error in answer.get("Errors", []):
            owner = by_name.get(error.get("SecretId", ""))
            if owner is not None and error.get("ErrorCode") != "ResourceNotFoundException":
                out[owner.key] = (None, f"its secret cannot be read: {error.get('Message', error.get('ErrorCode'))}")
    return out


def replaced(stack: str, recorded: list[tuple[Owner, str]], versions: dict[str, str]) -> dict[str, str]:
    """Owner key -> problem, for owners whose secret is gone or whose AWSCURRENT is not the version
    the ledger says its login was set from (changed by someone other than apply or rotation)."""
    found = {}
    for owner, version in recorded:
        current = versions.get(secret_name(stack, owner.kind, owner.id))
        if current is None:
            found[owner.key] = MISSING
        elif version not in ("set", current):  # "set": recorded before versions were
            found[owner.key] = f"its secret's current version is not the one its login was set from ({version[:8]})"
    return found


def refused(cluster: Cluster, stack: str, region: str, owners: list[Owner]) -> dict[str, str]:
    """Owner key -> problem, for owners whose AWSCURRENT is unusable or refused by this cell: a
    login each (LOGIN_TESTS at once)."""
    current = read_current(region, stack, owners)

    def one(owner: Owner) -> str | None:
        user, _, problem = judge(owner, *current[owner.key])
        if problem is not None or user is None:
            return problem
        password = json.loads(current[owner.key][0]["SecretString"])["password"]  # type: ignore[index]
        try:
            connect(cluster, Credentials(user, password), autocommit=True).close()
        except LoginRefused as exc:
            return f"the database refuses its secret ({user}): {str(exc).split(': ')[-1]}"
        except ProvisionError:
            return None  # the cell, not the owner: apply reports the cell
        return None

    with ThreadPoolExecutor(max_workers=LOGIN_TESTS) as pool:
        return {o.key: why for o, why in zip(owners, pool.map(one, owners), strict=True) if why is not None}


def warning(stack: str, key: str, problem: str) -> str:
    kind, owner_id = key.split(":", 1)
    return f"{key}: {problem}; repair: {REPAIR.format(kind=kind, stack=stack, id=owner_id)}"
