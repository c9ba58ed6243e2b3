"""The local stack's Secrets Manager answers as moto's own does: the same calls, through boto3,
against stock moto and against the indexed store with its page-only listing, give the same
answers (ARNs' random suffixes, version ids and dates aside), lookups by name, full and partial
ARN, replicas removed behind the store's back, deletions, and paged listings filtered by name
prefixes, negations and other filters beside them, in the store's order after a secret is made again, included."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.secretsmanager import models

from provisioner.local import motostore

ARN = re.compile(r"arn:aws:secretsmanager:([\w-]+):\d+:secret:([\w/+=.@-]+?)-[A-Za-z0-9]{6}\b")
RANDOM = {"VersionId", "ResponseMetadata"}
STAGES = {"VersionIdsToStages", "SecretVersionsToStages"}  # keyed by random version ids


def normal(value: Any) -> Any:
    """`value` with what differs between two runs of the same calls taken out."""
    if isinstance(value, dict):
        return {
            k: sorted(v.values()) if k in STAGES else normal(v)
            for k, v in value.items()
            if k not in RANDOM and not k.endswith("Date")
        }
    if isinstance(value, list):
        return [normal(v) for v in value]
    if isinstance(value, str):
        return ARN.sub(r"ARN(\1@\2)", value)
    return value


def answer(call: Any, **kwargs: Any) -> Any:
    try:
        return normal(call(**kwargs))
    except ClientError as exc:
        return exc.response["Error"]["Code"]


def pages(sm: Any, **kwargs: Any) -> list[Any]:
    return [normal(p) for p in sm.get_paginator("list_secrets").paginate(**kwargs, PaginationConfig={"PageSize": 2})]


def scenario() -> list[Any]:
    seen: list[Any] = []
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        replica_sm = boto3.client("secretsmanager", region_name="eu-central-1")
        arns = {}
        for name in ("askasia/s/tenants/b1/app", "askasia/s/tenants/a2/app", "askasia/s/tenants/a1/app", "other"):
            arns[name] = sm.create_secret(Name=name, SecretString=f'{{"n": "{name}"}}')["ARN"]
        first = "askasia/s/tenants/a1/app"
        for identifier in (first, arns[first], arns[first][:-7], "askasia/s/tenants/zz/app", arns[first][:-7] + "x"):
            seen.append(answer(sm.describe_secret, SecretId=identifier))
            seen.append(answer(sm.get_secret_value, SecretId=identifier))
        seen.append(answer(sm.batch_get_secret_value, SecretIdList=[first, arns["other"], "missing"]))
        seen.append(answer(sm.create_secret, Name=first, SecretString="again"))

        sm.replicate_secret_to_regions(SecretId=first, AddReplicaRegions=[{"Region": "eu-central-1"}])
        replica = arns[first].replace("eu-west-1", "eu-central-1")
        seen += [answer(replica_sm.describe_secret, SecretId=i) for i in (first, replica)]
        sm.remove_regions_from_replication(SecretId=first, RemoveReplicaRegions=["eu-central-1"])
        seen += [answer(replica_sm.describe_secret, SecretId=i) for i in (first, replica)]
        seen.append(answer(replica_sm.create_secret, Name=first, SecretString="regional"))
        seen.append(answer(replica_sm.describe_secret, SecretId=first))

        sm.delete_secret(SecretId="askasia/s/tenants/a2/app", RecoveryWindowInDays=7)
        sm.delete_secret(SecretId=arns["askasia/s/tenants/b1/app"], ForceDeleteWithoutRecovery=True)
        seen.append(answer(sm.describe_secret, SecretId=arns["askasia/s/tenants/b1/app"]))
        sm.create_secret(Name="askasia/s/tenants/b1/app", SecretString="new", Description="made again")
        seen.append(answer(sm.describe_secret, SecretId=arns["askasia/s/tenants/b1/app"]))
        seen.append(answer(sm.describe_secret, SecretId="askasia/s/tenants/b1/app"))

        seen.append(pages(sm))
        seen.append(pages(sm, IncludePlannedDeletion=True))
        seen.append(pages(sm, Filters=[{"Key": "name", "Values": ["askasia/s/tenants/a", "other"]}]))
        seen.append(pages(sm, Filters=[{"Key": "name", "Values": ["askasia/s/tenants/"]}], IncludePlannedDeletion=True))
        seen.append(pages(sm, Filters=[{"Key": "name", "Values": ["!askasia/s/tenants/a"]}]))
        seen.append(pages(sm, Filters=[{"Key": "name", "Values": ["askasia/s/tenants/b1/app", "askasia/s/tenants/b"]}]))
        # A name filter with another: moto's filters still decide (only the description one holds).
        described = [{"Key": "name", "Values": ["askasia/s/tenants/"]}, {"Key": "description", "Values": ["again"]}]
        seen.append(pages(sm, Filters=described))
        seen.append(pages(replica_sm, Filters=[{"Key": "name", "Values": ["askasia/"]}]))
    return seen


def test_the_indexed_store_answers_as_moto_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # moto's mock answers AWS's own endpoints: one a local stack set (the session's, for the db
    # tests) would send these calls to its server, whose secrets outlive the mock.
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    stock = scenario()
    monkeypatch.setattr(models, "SecretsStore", models.SecretsStore)  # restored after the test
    monkeypatch.setattr(models.SecretsManagerBackend, "list_secrets", models.SecretsManagerBackend.list_secrets)
    motostore.install()
    indexed = scenario()
    assert models.SecretsStore is motostore.IndexedSecretsStore
    assert indexed == stock
    assert "ResourceNotFoundException" in stock  # the scenario reaches misses, not only hits
    assert max(len(seen) for seen in stock if isinstance(seen, list)) > 1  # and listings of pages


def test_a_stale_index_entry_is_not_trusted() -> None:
    """A secret popped behind the store's back (as moto removes a replica) is not found through
    the index entry left behind, and one stored later under its name is."""
    store = motostore.IndexedSecretsStore()
    first, later = secret("x", "arn:1"), secret("x", "arn:2")
    store["arn:1"] = first
    dict.pop(store, "arn:1")
    assert "x" not in store and "arn:1" not in store and store.get("x") is None
    store["x"] = later
    assert store["x"] is later and store["arn:2"] is later and "arn:1" not in store
    assert store.pop("arn:2") is later and "x" not in store
    store["x"] = secret("y", "arn:3")  # the same key, another name: not listed under the old one
    assert store.named(["x"]) == [] and [s.arn for s in store.named(["y"])] == ["arn:3"]


def secret(name: str, arn: str) -> Any:
    return SimpleNamespace(name=name, arn=arn)
