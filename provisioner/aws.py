"""boto3 clients: the same code against real AWS and the local moto server.

boto3 itself honours AWS_ENDPOINT_URL, AWS_REGION and the usual credential chain, so nothing
here is local-specific; the local stack only sets those variables (see `provision local env`).
"""

from __future__ import annotations

import json
import os
import threading
from functools import cache

import boto3
from botocore.config import Config

_CONFIG = Config(retries={"max_attempts": 5, "mode": "standard"}, connect_timeout=5, read_timeout=30)


_making = threading.Lock()


def client(service: str, region: str, *, as_sent: tuple[str, ...] = ()):
    """`as_sent`: operations whose answers come back as the service sent them, JSON decoded and
    not walked through botocore's model: the same keys and values (a JSON protocol names them as
    the model does), timestamps as the numbers sent, a null as None where botocore drops the key.
    For listings read for a few fields of many entries: the walk, dates parsed by dateutil
    included, was most of a ListSecrets page's client CPU (a listing of 10,001 secrets, old and new
    alternated twelve times: 0.63 -> 0.41 s). An answer that is not a success goes through
    botocore as usual, which raises it."""
    # The endpoint is part of the cache key: a client made before the environment pointed
    # somewhere else must not be reused. One maker at a time: cells' threads asking at once
    # would each build a client (~0.1 s of CPU apiece, loading the service model) and keep one.
    with _making:
        return _client(service, region, os.environ.get("AWS_ENDPOINT_URL"), as_sent)


def _decoded_as_sent(response_dict: dict, customized_response_dict: dict, **_: object) -> None:
    # botocore's before-parse hook: what it finds in customized_response_dict it puts over what
    # its parser made of the body, here an empty document.
    if response_dict["status_code"] == 200:
        customized_response_dict.update(json.loads(response_dict["body"]))
        response_dict["body"] = b"{}"


@cache
def _session(endpoint: str | None) -> boto3.session.Session:
    """One per endpoint: its clients share the service models it loaded (a client of a session
    of its own loads them again, ~0.06 s of CPU)."""
    return boto3.session.Session()


@cache
def _client(service: str, region: str, endpoint: str | None, as_sent: tuple[str, ...]):
    made = _session(endpoint).client(service, region_name=region, config=_CONFIG)
    for operation in as_sent:  # on this client only: its events are its own copy of the session's
        made.meta.events.register(
            f"before-parse.{made.meta.service_model.service_id.hyphenize()}.{operation}", _decoded_as_sent
        )
    return made
