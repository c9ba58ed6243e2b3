"""boto3 clients: the same code against real AWS and the local moto server.

boto3 itself honours AWS_ENDPOINT_URL, AWS_REGION and the usual credential chain, so nothing
here is local-specific; the local stack only sets those variables (see `provision local env`).
"""

from __future__ import annotations

import os
import threading
from functools import cache

import boto3
import botocore.session
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


_making = threading.Lock()


def client(service: str, region: str, *, raw_timestamps: bool = False):
    """`raw_timestamps`: a client whose answers keep their timestamps as sent, for listings whose
    dates nobody reads (botocore parses each with dateutil: a third of a ListSecrets page's
    client CPU)."""
    # The endpoint is part of the cache key: a client made before the environment pointed
    # somewhere else must not be reused. One maker at a time: cells' threads asking at once
    # would each build a client (~0.1 s of CPU apiece, loading the service model) and keep one.
    with _making:
        return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"), raw_timestamps)


def _as_sent(value: object) -> object:
    return value


@cache
def _client(service: str, region: str, endpoint: str | None, raw_timestamps: bool):
    session = boto3.session.Session()
    if raw_timestamps:  # the parser factory is this session's own: other clients parse as usual
        core = botocore.session.get_session()
        core.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_as_sent)
        session = boto3.session.Session(botocore_session=core)
    return session.client(service, region_name=region, config=_CONFIG)
