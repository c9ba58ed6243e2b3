"""The local stack's moto server: moto's own server, answering one request at a time.

moto's backends are not safe for concurrent writes: ten cells creating their tenants' secrets
at once make Secrets Manager's store change size while another request iterates it, and moto
answers HTTP 500 ("dictionary changed size during iteration"). AWS itself takes those calls
concurrently, so the tool keeps making them so; the stand-in serializes them instead. It costs
little: moto holds everything in one process's memory, behind the GIL either way.

    python -m provisioner.local.motoserve -H 127.0.0.1 -p PORT
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto import backends
from moto.moto_api import recorder
from moto.server import DomainDispatcherApplication, MotoRequestHandler, create_backend_app, signal_handler
from werkzeug.serving import run_simple

from provisioner.local import motojournal, motostore

CONTROL = "/moto-api/"  # moto's own API: a journal's replay calls the server back from inside it


class OneAtATime:
    """A WSGI application that lets one AWS request at a time into `app`, its body read inside.
    moto's own control requests pass freely: the replay of a journal holds its request open
    while it sends each recorded one back to this server."""

    def __init__(self, app: Callable[..., Iterable[bytes]]):
        self.app, self.lock = app, threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        if environ.get("PATH_INFO", "").startswith(CONTROL):
            return list(self.app(environ, start_response))
        with self.lock:
            return list(self.app(environ, start_response))


def modules_listed_once() -> None:
    """moto's server routes each request by listing its own package's directory, twice (a
    listdir and ~180 stats, ~1 ms of a request's CPU); what is installed does not change while
    it runs, so the list is made once."""
    modules = tuple(backends.list_of_moto_modules())
    backends.list_of_moto_modules = lambda: modules


def reads_not_recorded() -> None:
    """moto's recorder keeps what changes state only: the journal is replayed for what the
    store holds, and a read written into it (a listing's hundred pages, every verify's
    credential reads) cost its request a JSON line and grew the file with the stack's use."""
    record = recorder._record_request

    def record_changes(request: Any, body: bytes | None = None) -> None:
        if motojournal.changes_state({"url": request.raw_url, "headers": request.headers}):
            record(request, body)

    recorder._record_request = record_changes  # type: ignore[method-assign]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-H", "--host", default="127.0.0.1")
    parser.add_argument("-p", "--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    signal.signal(signal.SIGTERM, signal_handler)
    signal.signal(signal.SIGINT, signal_handler)
    motostore.install()  # before moto makes its backends
    modules_listed_once()
    reads_not_recorded()
    app = OneAtATime(DomainDispatcherApplication(create_backend_app))
    # Threaded: connections are accepted while another request runs. (waitress, which keeps
    # connections alive where werkzeug closes each, never answers a request that expects
    # `100-continue` with an empty body, as botocore's S3 PutObject of an empty file does.)
    run_simple(args.host, args.port, app, threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
