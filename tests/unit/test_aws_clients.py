"""boto3 clients are made once per service, region and endpoint, however many cells ask at once."""

from __future__ import annotations

import threading

from provisioner import aws


def test_cells_asking_at_once_share_one_client(monkeypatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # a key of its own; nothing is called
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    start = threading.Barrier(10)
    made: list[object] = []

    def ask() -> None:
        start.wait()
        made.append(aws.client("secretsmanager", "eu-west-1"))

    threads = [threading.Thread(target=ask) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(made) == 10 and len({id(c) for c in made}) == 1
