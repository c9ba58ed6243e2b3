"""The TLS endpoint of a cell: DNS names, an ACM certificate, and an RDS Proxy that requires
TLS and IAM authentication.

Who connects where. Tenants' app roles and partners' console roles connect to the cluster
endpoint directly (the stack outputs' `app_endpoint`), each with its own SCRAM credential from
Secrets Manager, so row level security binds every session to its role. A proxy registers at
most 200 Secrets Manager secrets (one per database user it logs in as; RDS Proxy quotas in the
Aurora User Guide), far fewer than the tenants of a cell, and a proxy that logs in with one
shared credential makes every application that one user. So the proxy serves only the
platform's own service role (contract.outputs.PROXY_USER, a member of the operator role),
with end-to-end IAM authentication (`default_auth_scheme = IAM_AUTH`: clients present an IAM
token, and the proxy logs in to the database with IAM too, with no stored secret at all):
the proxy's IAM role may `rds-db:connect` as that one database user and nothing else; it reads
no secret, the master's least of all (policy rule rds-proxy-not-master).

Clients that verify the server (sslmode=verify-full) must connect to the AWS host names the
stack outputs export: Aurora and RDS Proxy present AWS-issued certificates for those names,
not for the Route 53 aliases. The aliases and the ACM certificate serve TLS terminators and
people; the certificate is DNS-validated in the given hosted zone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import pulumi
import pulumi_aws as aws

from components.iam import document, service_trust
from components.network import PORT, postgres_security_group
from contract.outputs import PROXY_USER

CERT_KEY_ALGORITHMS = ("RSA_2048", "EC_prime256v1", "EC_secp384r1")


@dataclass(frozen=True)
class EndpointArgs:
    stack: str
    region: str
    cell: str
    domain: str
    hosted_zone_id: str
    vpc_id: str
    subnet_ids: Sequence[str]
    allowed_source_security_group_ids: Sequence[str]
    database_security_group_id: pulumi.Input[str]
    cluster_identifier: pulumi.Input[str]
    writer_endpoint: pulumi.Input[str]
    reader_endpoint: pulumi.Input[str]
    cluster_resource_id: pulumi.Input[str]
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str] = "aws"
    certificate_key_algorithm: str = "RSA_2048"
    record_ttl: int = 60
    # Wait for the members: a proxy target needs an available writer instance.
    depends_on: Sequence[pulumi.Resource] = ()
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.certificate_key_algorithm not in CERT_KEY_ALGORITHMS:
            raise ValueError(f"certificate_key_algorithm must be one of {', '.join(CERT_KEY_ALGORITHMS)}")
        if not self.allowed_source_security_group_ids:
            raise ValueError("allowed_source_security_group_ids: name at least one source group")

    @property
    def names(self) -> dict[str, str]:
        base = f"db.{self.region}.{self.domain}"
        return {
            "writer": f"{self.cell}.{base}",
            "reader": f"{self.cell}-ro.{base}",
            "proxy": f"{self.cell}-proxy.{base}",
        }

    @property
    def proxy_name(self) -> str:
        return f"askasia-{self.stack}-{self.cell}"


class Endpoint(pulumi.ComponentResource):
    """DNS names, certificate and RDS Proxy for one cell."""

    proxy: aws.rds.Proxy
    certificate: aws.acm.Certificate
    names: dict[str, str]

    def __init__(self, name: str, args: EndpointArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Endpoint", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tags = {**args.tags, "askasia:cell": args.cell}
        self.names = args.names

        self.certificate = aws.acm.Certificate(
            f"{name}-cert",
            domain_name=self.names["writer"],
            subject_alternative_names=[self.names["reader"], self.names["proxy"]],
            validation_method="DNS",
            key_algorithm=args.certificate_key_algorithm,
            options=aws.acm.CertificateOptionsArgs(certificate_transparency_logging_preference="ENABLED"),
            tags=tags,
            opts=child,
        )
        # One validation record per name on the certificate (ACM returns them in any order).
        validation_fqdns = []
        for i in range(len(self.names)):
            option = self.certificate.domain_validation_options.apply(itemgetter(i))
            record = aws.route53.Record(
                f"{name}-cert-validation-{i}",
                zone_id=args.hosted_zone_id,
                name=option.apply(lambda o: o.resource_record_name),
                type=option.apply(lambda o: o.resource_record_type),
                records=[option.apply(lambda o: o.resource_record_value)],
                ttl=300,
                allow_overwrite=True,
                opts=child,
            )
            validation_fqdns.append(record.fqdn)
        self.validation = aws.acm.CertificateValidation(
            f"{name}-cert-validated",
            certificate_arn=self.certificate.arn,
            validation_record_fqdns=validation_fqdns,
            opts=child,
        )

        # The proxy has its own group: clients reach it on 5432, it reaches only the database.
        proxy_sg = postgres_security_group(
            f"{name}-proxy",
            vpc_id=args.vpc_id,
            description=f"RDS Proxy {args.proxy_name}: PostgreSQL from named security groups only",
            sources=args.allowed_source_security_group_ids,
            tags={**tags, "Name": f"{args.proxy_name}-proxy"},
            opts=child,
        )
        aws.vpc.SecurityGroupEgressRule(
            f"{name}-proxy-egress-db",
            security_group_id=proxy_sg.id,
            referenced_security_group_id=args.database_security_group_id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL to the cell's cluster",
            opts=child,
        )
        aws.vpc.SecurityGroupIngressRule(
            f"{name}-db-ingress-proxy",
            security_group_id=args.database_security_group_id,
            referenced_security_group_id=proxy_sg.id,
            ip_protocol="tcp",
            from_port=PORT,
            to_port=PORT,
            description="PostgreSQL from the cell's RDS Proxy",
            opts=child,
        )

        # The proxy logs in to the database as the platform's service role, with IAM: it may
        # connect as that one user, and reads no secret.
        role = aws.iam.Role(
            f"{name}-proxy-role",
            description=f"RDS Proxy {args.proxy_name} connects to the cluster as {PROXY_USER} (IAM)",
            assume_role_policy=service_trust("rds.amazonaws.com", args.account_id),
            tags=tags,
            opts=child,
        )
        db_user_arn = pulumi.Output.all(args.partition, args.account_id, args.cluster_resource_id).apply(
            lambda v: f"arn:{v[0]}:rds-db:{args.region}:{v[1]}:dbuser:{v[2]}/{PROXY_USER}"
        )
        aws.iam.RolePolicy(
            f"{name}-proxy-connect",
            role=role.id,
            policy=document(
                [
                    {
                        "Sid": "ConnectAsPlatformService",
                        "Effect": "Allow",
                        "Action": "rds-db:connect",
                        "Resource": db_user_arn,
                    }
                ]
            ),
            opts=pulumi.ResourceOptions(parent=self, aliases=[pulumi.Alias(name=f"{name}-proxy-secret")]),
        )

        self.proxy = aws.rds.Proxy(
            f"{name}-proxy",
            name=args.proxy_name,
            engine_family="POSTGRESQL",
            role_arn=role.arn,
            vpc_subnet_ids=list(args.subnet_ids),
            vpc_security_group_ids=[proxy_sg.id],
            require_tls=True,
            debug_logging=False,  # debug logs would carry SQL text
            idle_client_timeout=1800,
            # End-to-end IAM: no `auths`, so no secret (and never the master's) is registered.
            default_auth_scheme="IAM_AUTH",
            tags=tags,
            opts=child,
        )
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-proxy-targets",
            db_proxy_name=self.proxy.name,
            connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                max_connections_percent=90,
                max_idle_connections_percent=10,
                connection_borrow_timeout=120,
            ),
            opts=child,
        )
        aws.rds.ProxyTarget(
            f"{name}-proxy-target",
            db_proxy_name=self.proxy.name,
            target_group_name=target_group.name,
            db_cluster_identifier=args.cluster_identifier,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on)),
        )

        targets = {"writer": args.writer_endpoint, "reader": args.reader_endpoint, "proxy": self.proxy.endpoint}
        self.records = {
            role_name: aws.route53.Record(
                f"{name}-{role_name}-dns",
                zone_id=args.hosted_zone_id,
                name=self.names[role_name],
                type="CNAME",
                ttl=args.record_ttl,
                records=[targets[role_name]],
                opts=child,
            )
            for role_name in ("writer", "reader", "proxy")
        }

        self.register_outputs(
            {
                "names": self.names,
                "proxy_endpoint": self.proxy.endpoint,
                "certificate_arn": self.validation.certificate_arn,
            }
        )
