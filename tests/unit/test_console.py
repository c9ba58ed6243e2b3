"""`--json` output: a listing is one compact object a line, and every document stays valid JSON."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from provisioner.console import print_json


@pytest.mark.parametrize(
    "data", [[], [{"id": "t1", "created_at": dt.datetime(2026, 1, 2, tzinfo=dt.UTC)}, {"id": "t2"}], {"cells": [1]}]
)
def test_json_output_reads_back(data, capsys) -> None:
    print_json(data)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(data, default=str))


def test_a_listing_is_one_object_a_line(capsys) -> None:
    rows = [{"id": f"t{i}", "plan": "starter"} for i in range(3)]
    print_json(rows)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "[" and lines[-1] == "]"
    assert [json.loads(line.strip().rstrip(",")) for line in lines[1:-1]] == rows
