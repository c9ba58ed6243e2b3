"""Security groups that admit PostgreSQL only from named source groups (never a CIDR)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

PORT = 5432


def postgres_security_group(
    name: str,
    *,
    vpc_id: pulumi.Input[str],
    description: str,
    sources: Sequence[pulumi.Input[str]],
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> aws.ec2.SecurityGroup:
    """`<name>-sg` with one `<name>-ingress-<i>` rule per source group. No CIDR rules, so nothing
    admits 0.0.0.0/0; no egress rule unless the caller adds one."""
    group = aws.ec2.SecurityGroup(
        f"{name}-sg",
        vpc_id=vpc_id,
        description=description,
        revoke_rules_on_delete=True,
        tags=dict(tags),
        opts=opts,
    )
    for i, source in enumerate(sources):
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-ingress-{i}",
            security_group_id=group.id,
            referenced_security_group_id=source,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description=f"PostgreSQL from {source}",
            opts=opts,
        )
    return group
