"""The local moto server lets one AWS request at a time into moto (whose stores are not safe for
concurrent writes), while moto's own control requests pass: a journal's replay sends each
recorded request back to the server from inside its own."""

from __future__ import annotations

import threading
import time

from provisioner.local.motoserve import OneAtATime


class Recorder:
    """A WSGI app that notes how many requests are inside it at once."""

    def __init__(self) -> None:
        self.inside = self.most = 0
        self.count = threading.Lock()

    def __call__(self, environ, start_response):
        with self.count:
            self.inside += 1
            self.most = max(self.most, self.inside)
        time.sleep(0.02)
        with self.count:
            self.inside -= 1
        start_response("200 OK", [])
        return [environ["PATH_INFO"].encode()]


def request(app, path: str) -> list[bytes]:
    return app({"PATH_INFO": path}, lambda *args: None)


def test_aws_requests_enter_moto_one_at_a_time() -> None:
    inner = Recorder()
    app = OneAtATime(inner)
    threads = [threading.Thread(target=request, args=(app, "/")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.most == 1
    assert request(app, "/") == [b"/"]


def test_unwrapped_the_same_requests_overlap() -> None:
    """The recorder does see overlap when nothing serializes: the test above can fail."""
    inner = Recorder()
    threads = [threading.Thread(target=request, args=(inner, "/")) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert inner.most > 1


def test_a_journal_replay_is_answered_the_requests_it_sends_back() -> None:
    """The replay holds its own request open while each recorded one comes back to the server:
    were it let in like an AWS request, the first of those would wait on it forever."""
    answered_in_time: list[bool] = []

    def moto(environ, start_response):
        if environ["PATH_INFO"] == "/moto-api/recorder/replay-recording":
            replayed = threading.Thread(target=request, args=(app, "/"))
            replayed.start()
            replayed.join(timeout=2)
            answered_in_time.append(not replayed.is_alive())
        start_response("200 OK", [])
        return [b"done"]

    app = OneAtATime(moto)
    assert request(app, "/moto-api/recorder/replay-recording") == [b"done"]
    assert answered_in_time == [True]
