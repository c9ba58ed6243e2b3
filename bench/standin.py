"""What the local stack's Secrets Manager costs a call as its store grows, stock moto beside the
stand-in's (provisioner/local/motostore.py), in one run.

    .venv/bin/python bench/standin.py [--secrets 11000] [--calls 200]

AWS's cost per call does not grow with the secrets a region holds, so each figure is the same
call against a store of `--small` secrets (the floor) and against `--secrets`; the target is
the large store within 1.5x of the small one. The calls are the tool's: CreateSecret with its
tags, BatchGetSecretValue of 20 names (verify's and `tenants list`'s reads), a ListSecrets page
of one of apply's 36 slices and the first page of a listing that matches every secret.
Measured in process through boto3 (moto's server adds its HTTP handling to each call, the same
in both).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.pop("AWS_ENDPOINT_URL", None)  # moto's mock answers AWS's endpoints, not a local stack's
for variable, value in {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"}.items():
    os.environ.setdefault(variable, value)

import boto3  # noqa: E402
from moto import mock_aws  # noqa: E402
from moto.core import DEFAULT_ACCOUNT_ID  # noqa: E402
from moto.secretsmanager import models  # noqa: E402

from provisioner.local import motostore  # noqa: E402
from provisioner.names import ID_ALPHABET, new_id  # noqa: E402

REGION, PREFIX = "eu-west-1", "askasia/bench/tenants/"
STOCK = (models.SecretsStore, models.SecretsManagerBackend.list_secrets)


def per_call(call: Callable[[], object], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return (time.perf_counter() - started) / calls * 1000


def costs(secrets: int, calls: int) -> dict[str, float]:
    """Milliseconds a call of each kind against a store of `secrets` tenant secrets."""
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name=REGION)
        backend = models.secretsmanager_backends[DEFAULT_ACCOUNT_ID][REGION]
        names = [f"{PREFIX}{new_id()}/app" for _ in range(secrets)]
        for name in names:  # filled through the backend: the fill is not what is measured
            backend.create_secret(name, "{}", None, None, [], None, None, [], False)
        fresh = iter(f"{PREFIX}{new_id()}/app" for _ in range(calls))
        tags = [{"Key": "askasia:stack", "Value": "bench"}, {"Key": "askasia:tenant", "Value": "t"}]
        sample = names[:: max(1, len(names) // 20)][:20]
        one_slice = [{"Key": "name", "Values": [PREFIX + ID_ALPHABET[0]]}]
        every = [{"Key": "name", "Values": [PREFIX]}]
        few = calls // 4
        return {
            "CreateSecret": per_call(lambda: sm.create_secret(Name=next(fresh), SecretString="{}", Tags=tags), calls),
            "BatchGetSecretValue, 20 names": per_call(lambda: sm.batch_get_secret_value(SecretIdList=sample), few),
            "ListSecrets, one slice's page": per_call(lambda: sm.list_secrets(Filters=one_slice, MaxResults=100), few),
            "ListSecrets, first page of all": per_call(lambda: sm.list_secrets(Filters=every, MaxResults=100), few),
        }


def use(stock: bool) -> None:
    if stock:
        models.SecretsStore, models.SecretsManagerBackend.list_secrets = STOCK  # type: ignore[method-assign,misc]
    else:
        motostore.install()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--secrets", type=int, default=11000)
    parser.add_argument("--small", type=int, default=400)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    for label, stock in (("stock moto", True), ("stand-in", False)):
        use(stock)
        small, large = costs(args.small, args.calls), costs(args.secrets, args.calls)
        print(f"{label}: ms a call at {args.small} secrets (floor) and at {args.secrets}")
        for call, floor in small.items():
            ratio = large[call] / floor
            figure = f"{floor:.2f} -> {large[call]:.2f} ms"
            print(f"  {call:<34} {figure:>22}   {ratio:5.2f}x   target <= 1.5x  {'OK' if ratio <= 1.5 else 'MISSED'}")


if __name__ == "__main__":
    main()
