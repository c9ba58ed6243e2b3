"""boto3 clients: the same code against real AWS and the local moto server.

boto3 itself honours AWS_ENDPOINT_URL, AWS_REGION and the usual credential chain, so nothing
here is local-specific; the local stack only sets those variables (see `provision local env`).
"""

from __future__ import annotations

import os
import threading
from functools import cache

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


_making = threading.Lock()


def client(service: str, region: str):
    # The endpoint is part of the cache key: a client made before the environment pointed
    # somewhere else must not be reused. One maker at a time: cells' threads asking at once
    # would each build a client (~0.1 s of CPU apiece, loading the service model) and keep one.
    with _making:
        return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"))


@cache
def _client(service: str, region: str, endpoint: str | None):
    return boto3.session.Session().client(service, region_name=region, config=_CONFIG)
