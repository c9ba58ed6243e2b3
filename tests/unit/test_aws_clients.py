"""boto3 clients are made once per service, region and endpoint, however many cells ask at once."""

from __future__ import annotations

import datetime as dt
import threading

from moto import mock_aws

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


def test_a_raw_timestamps_client_keeps_dates_as_sent_and_the_others_parse_them(monkeypatch) -> None:
    """The credentials listing's client: names and versions as any client has them, dates left
    as the service sent them (nobody reads them); the ordinary client still parses them."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws._client.cache_clear()
        try:
            listing = aws.client("secretsmanager", "eu-west-1", raw_timestamps=True)  # made first
            made = aws.client("secretsmanager", "eu-west-1").create_secret(
                Name="askasia/s/tenants/a1/app", SecretString="{}"
            )
            raw = listing.list_secrets()["SecretList"]
            parsed = aws.client("secretsmanager", "eu-west-1").list_secrets()["SecretList"]
        finally:
            aws._client.cache_clear()
    assert [e["Name"] for e in raw] == [e["Name"] for e in parsed] == ["askasia/s/tenants/a1/app"]
    assert (
        raw[0]["SecretVersionsToStages"] == parsed[0]["SecretVersionsToStages"] == {made["VersionId"]: ["AWSCURRENT"]}
    )
    assert isinstance(parsed[0]["CreatedDate"], dt.datetime)
    assert (
        isinstance(raw[0]["CreatedDate"], (int, float))
        and raw[0]["CreatedDate"] == parsed[0]["CreatedDate"].timestamp()
    )
