"""The stack-outputs contract: the validator accepts the shape contract/outputs.py declares and names what is wrong."""

import copy
import json

import pytest

from contract.outputs import OutputsInvalid, StackOutputs, parse_outputs
from provisioner.errors import InputError
from provisioner.stackref import load_outputs_file

GOOD = {
    "stack": "prod-eu-west-1",
    "region": "eu-west-1",
    "origins": ["EU", "UK"],
    "clusters": [
        {
            "cell": "cell-1",
            "endpoint": "c1.cluster-abc.eu-west-1.rds.amazonaws.com",
            "app_endpoint": "c1.cluster-abc.eu-west-1.rds.amazonaws.com",
            "proxy_endpoint": "askasia-prod-eu-west-1-cell-1.proxy-abc.eu-west-1.rds.amazonaws.com",
            "port": 5432,
            "database": "platform",
            "master_secret_arn": "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "ca_bundle": "rds-ca-rsa2048-g1",
            "iam_auth": True,
        }
    ],
    "kms": {"data": "arn:d", "logs": "arn:l", "backup": "arn:b", "secrets": "arn:s", "jwt_signing": "arn:j"},
    "dr": {"region": "eu-central-1", "mode": "snapshot-copy"},
    "audit_log_groups": {"starter": "/a/s", "growth": "/a/g", "enterprise": "/a/e"},
    "jwt": {
        "jwks_parameter": "/askasia/prod-eu-west-1/auth/jwks",
        "config_parameter": "/askasia/prod-eu-west-1/auth/jwt",
    },
}


def test_good_outputs_parse():
    parsed = parse_outputs(GOOD)
    assert parsed.cells == ["cell-1"]
    assert parsed.cluster("cell-1").port == 5432
    assert parsed.kms["jwt_signing"] == "arn:j"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.pop("kms"), "lack kms"),
        (lambda d: d["clusters"][0].pop("endpoint"), "clusters[0] lacks endpoint"),
        (lambda d: d["clusters"][0].pop("app_endpoint"), "clusters[0] lacks app_endpoint"),
        (lambda d: d["clusters"][0].update(proxy_endpoint=None), "clusters[0].proxy_endpoint must be str"),
        (lambda d: d["clusters"][0].update(port="5432"), "clusters[0].port must be int"),
        (lambda d: d["clusters"][0].update(iam_auth="yes"), "iam_auth must be bool"),
        (lambda d: d["clusters"].append(dict(d["clusters"][0])), "duplicate cell"),
        (lambda d: d.update(clusters=[]), "clusters is empty"),
        (lambda d: d["audit_log_groups"].pop("enterprise"), "audit_log_groups lacks enterprise"),
        (lambda d: d["dr"].pop("mode"), "dr lacks mode"),
        (lambda d: d.pop("origins"), "lack origins"),
        (lambda d: d["jwt"].pop("jwks_parameter"), "jwt lacks jwks_parameter"),
        (lambda d: d.update(origins=[]), "origins is empty"),
        (lambda d: d.update(origins="EU"), "origins must be list"),
        (lambda d: d.update(origins=["EU", 7]), "origins[1] must be str"),
        (lambda d: d.update(origins=["EU", "EU"]), "lists a jurisdiction twice"),
    ],
)
def test_bad_outputs_are_named(mutate, message):
    doc = copy.deepcopy(GOOD)
    mutate(doc)
    with pytest.raises(OutputsInvalid, match=message.replace("[", r"\[").replace("]", r"\]")):
        parse_outputs(doc)


def test_to_json_gives_back_the_contract_shape():
    parsed = parse_outputs(GOOD)
    assert parsed.to_json() == GOOD
    assert parse_outputs(json.loads(json.dumps(parsed.to_json()))) == parsed
    assert isinstance(parsed, StackOutputs)


def test_unknown_cell_is_a_clear_error():
    with pytest.raises(OutputsInvalid, match="no cell 'cell-9'"):
        parse_outputs(GOOD).cluster("cell-9")


def test_a_bad_outputs_file_is_an_input_error(tmp_path):
    doc = copy.deepcopy(GOOD)
    doc.pop("kms")
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="lack kms"):
        load_outputs_file(path)


def test_outputs_file_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_outputs_file(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="not JSON"):
        load_outputs_file(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps(GOOD))
    assert load_outputs_file(good).stack == "prod-eu-west-1"
