"""Small builders for IAM/KMS/S3 policy documents (JSON with pulumi Outputs inside)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi


def document(statements: Sequence[Mapping[str, Any]]) -> pulumi.Output[str]:
    """A policy document; Outputs anywhere inside are resolved before serialising."""
    return pulumi.Output.json_dumps({"Version": "2012-10-17", "Statement": list(statements)})


def account_root(partition: pulumi.Input[str], account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    return pulumi.Output.concat("arn:", partition, ":iam::", account_id, ":root")


def service_trust(service: str, account_id: pulumi.Input[str]) -> pulumi.Output[str]:
    """Trust policy for one AWS service, limited to calls made for this account (confused deputy)."""
    return document(
        [
            {
                "Sid": "TrustService",
                "Effect": "Allow",
                "Principal": {"Service": service},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account_id}},
            }
        ]
    )
