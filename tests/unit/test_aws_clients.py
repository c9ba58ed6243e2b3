"""boto3 clients are made once per service, region and endpoint, however many cells ask at once."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from botocore.exceptions import ClientError
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


def test_answers_as_sent_for_the_operations_named_and_parsed_for_the_others(monkeypatch) -> None:
    """The credentials listing's client: ListSecrets' entries with the names and versions any
    client has, dates as the numbers sent (nobody reads them); its other operations, and the
    ordinary client, parse as usual; a refusal is still raised."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        aws._client.cache_clear()
        try:
            listing = aws.client("secretsmanager", "eu-west-1", as_sent=("ListSecrets",))  # made first
            ordinary = aws.client("secretsmanager", "eu-west-1")
            made = ordinary.create_secret(Name="askasia/s/tenants/a1/app", SecretString="{}")
            raw = listing.list_secrets()["SecretList"]
            parsed = ordinary.list_secrets()["SecretList"]
            described = listing.describe_secret(SecretId=made["ARN"])
            with pytest.raises(ClientError) as refused:
                listing.list_secrets(Filters=[{"Key": "bogus", "Values": ["x"]}])
        finally:
            aws._client.cache_clear()
    assert listing is not ordinary
    assert [e["Name"] for e in raw] == [e["Name"] for e in parsed] == ["askasia/s/tenants/a1/app"]
    assert (
        raw[0]["SecretVersionsToStages"] == parsed[0]["SecretVersionsToStages"] == {made["VersionId"]: ["AWSCURRENT"]}
    )
    assert isinstance(parsed[0]["CreatedDate"], dt.datetime) and isinstance(described["CreatedDate"], dt.datetime)
    assert (
        isinstance(raw[0]["CreatedDate"], (int, float))
        and raw[0]["CreatedDate"] == parsed[0]["CreatedDate"].timestamp()
    )
    assert refused.value.response["Error"]["Code"] == "ValidationException"
