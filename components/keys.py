"""Customer-managed KMS keys, one per purpose, and the JWT signing key with its token policy.

Key policies split administration from use: the account root may administer a key (which
delegates to IAM) but performs no cryptographic operation on it directly; use is granted only
through the AWS service that needs it (kms:ViaService) or to a service principal bound by an
encryption-context or source-account condition. No statement names a wildcard principal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi_aws as aws

from components.iam import account_root, document
from contract.jwks import JWT_ALGORITHMS, KeyRing, jwk, jwks, token_policy
from contract.kms import SYMMETRIC_PURPOSES
from stackconfig.hardening import DEFAULT_ACCESS_TOKEN_TTL_MINUTES, MAX_ACCESS_TOKEN_TTL_MINUTES

JWT_KID_TAG = "askasia:jwt-kid"
JWT_ROLE_TAG = "askasia:jwt-role"

# Administrative actions only: no Encrypt/Decrypt/Sign and no CreateGrant (a grant is use).
ADMIN_ACTIONS = [
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:UpdateAlias",
    "kms:DescribeKey",
    "kms:EnableKey",
    "kms:DisableKey",
    "kms:EnableKeyRotation",
    "kms:DisableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListAliases",
    "kms:ListGrants",
    "kms:ListKeyPolicies",
    "kms:ListKeyRotations",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:UpdateKeyDescription",
    "kms:RevokeGrant",
    "kms:RetireGrant",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion",
    "kms:RotateKeyOnDemand",
    "kms:ReplicateKey",
    "kms:UpdatePrimaryRegion",
]
USE_ACTIONS = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
GRANT_ACTIONS = ["kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"]

# The services allowed to use each symmetric key on the account's behalf.
VIA_SERVICES: Mapping[str, tuple[str, ...]] = {
    "data": ("rds", "backup"),
    "logs": ("s3", "sns"),
    "backup": ("backup", "rds"),
    "secrets": ("secretsmanager", "ssm"),
}


@dataclass(frozen=True)
class KeysArgs:
    stack: str
    region: str
    account_id: pulumi.Input[str]
    partition: pulumi.Input[str]
    jwt_issuer: str
    dr_region: str | None = None
    dr_provider: aws.Provider | None = None
    jwt_key_spec: str = "ECC_NIST_P256"
    jwt_key_generation: int = 1
    access_token_ttl_minutes: int = DEFAULT_ACCESS_TOKEN_TTL_MINUTES
    # The longest window KMS allows: a key scheduled for deletion by mistake can be recovered.
    deletion_window_in_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.jwt_key_spec not in JWT_ALGORITHMS:
            raise ValueError(f"jwt_key_spec must be one of {', '.join(JWT_ALGORITHMS)}")
        if not 1 <= self.access_token_ttl_minutes <= MAX_ACCESS_TOKEN_TTL_MINUTES:
            raise ValueError(
                f"access_token_ttl_minutes {self.access_token_ttl_minutes} is outside 1..{MAX_ACCESS_TOKEN_TTL_MINUTES}"
            )
        if not 7 <= self.deletion_window_in_days <= 30:
            raise ValueError("deletion_window_in_days must be within 7..30")
        if (self.dr_region is None) != (self.dr_provider is None):
            raise ValueError("dr_region and dr_provider go together")


def _admin(a: KeysArgs) -> dict[str, Any]:
    return {
        "Sid": "AccountAdministersKey",
        "Effect": "Allow",
        "Principal": {"AWS": account_root(a.partition, a.account_id)},
        "Action": ADMIN_ACTIONS,
        "Resource": "*",
    }


def _via_services(a: KeysArgs, purpose: str, region: str) -> list[dict[str, Any]]:
    services = [f"{s}.{region}.amazonaws.com" for s in VIA_SERVICES[purpose]]
    principal = {"AWS": account_root(a.partition, a.account_id)}
    return [
        {
            "Sid": "UseThroughServices",
            "Effect": "Allow",
            "Principal": principal,
            "Action": USE_ACTIONS,
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:ViaService": services, "kms:CallerAccount": a.account_id}},
        },
        {
            "Sid": "GrantToServices",
            "Effect": "Allow",
            "Principal": principal,
            "Action": GRANT_ACTIONS,
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:ViaService": services, "kms:CallerAccount": a.account_id},
                "Bool": {"kms:GrantIsForAWSResource": "true"},
            },
        },
    ]


def _logs_services(a: KeysArgs) -> list[dict[str, Any]]:
    """CloudWatch Logs, CloudTrail and EventBridge (publishing to the encrypted SNS topic)."""
    trails = pulumi.Output.concat("arn:", a.partition, ":cloudtrail:*:", a.account_id, ":trail/*")
    log_groups = pulumi.Output.concat("arn:", a.partition, ":logs:", a.region, ":", a.account_id, ":log-group:*")
    return [
        {
            "Sid": "CloudWatchLogsEncryptsLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{a.region}.amazonaws.com"},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": log_groups}},
        },
        {
            "Sid": "CloudTrailEncryptsLogs",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:GenerateDataKey*",
            "Resource": "*",
            "Condition": {
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails},
                "StringEquals": {"aws:SourceAccount": a.account_id},
            },
        },
        {
            "Sid": "CloudTrailDescribesKey",
            "Effect": "Allow",
            "Principal": {"Service": "cloudtrail.amazonaws.com"},
            "Action": "kms:DescribeKey",
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": a.account_id}},
        },
        {
            "Sid": "AccountReadsTrailLogs",
            "Effect": "Allow",
            "Principal": {"AWS": account_root(a.partition, a.account_id)},
            "Action": ["kms:Decrypt", "kms:ReEncryptFrom"],
            "Resource": "*",
            "Condition": {
                "StringEquals": {"kms:CallerAccount": a.account_id},
                "StringLike": {"kms:EncryptionContext:aws:cloudtrail:arn": trails},
            },
        },
        {
            "Sid": "EventBridgePublishesToEncryptedTopic",
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
            "Resource": "*",
            "Condition": {"StringEquals": {"aws:SourceAccount": a.account_id}},
        },
    ]


def _jwt_use(a: KeysArgs, signs: bool) -> list[dict[str, Any]]:
    kms_algorithm, _ = JWT_ALGORITHMS[a.jwt_key_spec]
    principal = {"AWS": account_root(a.partition, a.account_id)}
    sign = [
        {
            "Sid": "SignAccessTokens",
            "Effect": "Allow",
            "Principal": principal,
            "Action": "kms:Sign",
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:SigningAlgorithm": kms_algorithm, "kms:CallerAccount": a.account_id}},
        }
    ]
    return (sign if signs else []) + [
        {
            "Sid": "VerifyAndPublishPublicKey",
            "Effect": "Allow",
            "Principal": principal,
            "Action": ["kms:Verify", "kms:GetPublicKey"],
            "Resource": "*",
            "Condition": {"StringEquals": {"kms:CallerAccount": a.account_id}},
        },
    ]


def key_policy(a: KeysArgs, purpose: str, region: str | None = None, signs: bool = True) -> pulumi.Output[str]:
    """`signs` False: a JWT key that only verifies (the ring's previous key)."""
    region = region or a.region
    statements: list[dict[str, Any]] = [_admin(a)]
    if purpose == "jwt_signing":
        statements += _jwt_use(a, signs)
    else:
        statements += _via_services(a, purpose, region)
        if purpose == "logs":
            statements += _logs_services(a)
    return document(statements)


class Keys(pulumi.ComponentResource):
    """KMS keys per purpose (data, logs, backup, secrets), the JWT signing key, token config."""

    keys: dict[str, aws.kms.Key]
    arns: dict[str, pulumi.Output[str]]
    backup_dr_key_arn: pulumi.Output[str] | None
    jwt_config_parameter: aws.ssm.Parameter
    jwks_parameter: aws.ssm.Parameter
    jwt_keys: dict[str, aws.kms.Key]  # role (previous, current, next) -> key

    def __init__(self, name: str, args: KeysArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Keys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = f"alias/askasia/{args.stack}"
        self.keys = {}
        for purpose in SYMMETRIC_PURPOSES:
            key = aws.kms.Key(
                f"{name}-{purpose}",
                description=f"askasia {args.stack}: {purpose}",
                key_usage="ENCRYPT_DECRYPT",
                customer_master_key_spec="SYMMETRIC_DEFAULT",
                enable_key_rotation=True,
                rotation_period_in_days=365,
                deletion_window_in_days=args.deletion_window_in_days,
                # Backups are copied to the DR region, where a replica of this key decrypts them.
                multi_region=purpose == "backup",
                policy=key_policy(args, purpose),
                tags={**args.tags, "askasia:key-purpose": purpose},
                opts=child,
            )
            aws.kms.Alias(f"{name}-{purpose}-alias", name=f"{prefix}/{purpose}", target_key_id=key.key_id, opts=child)
            self.keys[purpose] = key

        # Asymmetric keys cannot rotate in place: the ring rotates by key id (contract/jwks.py).
        self.ring = KeyRing(args.stack, args.jwt_key_generation)
        self.jwt_keys = {
            role: self._jwt_key(name, args, role, generation) for role, generation in self.ring.generations.items()
        }
        for role, suffix in (("current", ""), ("next", "-next")):
            aws.kms.Alias(
                f"{name}-jwt-signing{suffix}-alias",
                name=f"{prefix}/jwt-signing{suffix}",
                target_key_id=self.jwt_keys[role].key_id,
                opts=child,
            )
        self.keys["jwt_signing"] = self.jwt_keys["current"]
        self.arns = {purpose: key.arn for purpose, key in self.keys.items()}

        self.backup_dr_key_arn = None
        if args.dr_region and args.dr_provider is not None:
            dr_opts = pulumi.ResourceOptions(parent=self, provider=args.dr_provider)
            replica = aws.kms.ReplicaKey(
                f"{name}-backup-dr",
                description=f"askasia {args.stack}: backup copies in {args.dr_region}",
                primary_key_arn=self.keys["backup"].arn,
                deletion_window_in_days=args.deletion_window_in_days,
                policy=key_policy(args, "backup", args.dr_region),
                tags={**args.tags, "askasia:key-purpose": "backup"},
                opts=dr_opts,
            )
            aws.kms.Alias(
                f"{name}-backup-dr-alias", name=f"{prefix}/backup", target_key_id=replica.key_id, opts=dr_opts
            )
            self.backup_dr_key_arn = replica.arn

        self.jwks_parameter = self._jwks(name, args, child)
        self.jwt_config_parameter = self._jwt_config(name, args, child)
        self.register_outputs(
            {
                **{f"{purpose}_key_arn": arn for purpose, arn in self.arns.items()},
                "backup_dr_key_arn": self.backup_dr_key_arn,
                "jwt_config_parameter": self.jwt_config_parameter.name,
                "jwks_parameter": self.jwks_parameter.name,
            }
        )

    def _jwt_key(self, name: str, args: KeysArgs, role: str, generation: int) -> aws.kms.Key:
        kid = self.ring.kid(generation)
        # A key keeps its logical name for life, so promotion changes its tags, never the key.
        # Generation 1 is the key the stack had before the ring: it keeps its place in the state.
        aliases = [pulumi.Alias(name=f"{name}-jwt-signing")] if generation == 1 else []
        return aws.kms.Key(
            f"{name}-jwt-{generation}",
            description=f"askasia {args.stack}: JWT access-token signing, kid {kid}",
            key_usage="SIGN_VERIFY",
            customer_master_key_spec=args.jwt_key_spec,
            enable_key_rotation=False,
            deletion_window_in_days=args.deletion_window_in_days,
            policy=key_policy(args, "jwt_signing", signs=role != "previous"),
            tags={**args.tags, "askasia:key-purpose": "jwt_signing", JWT_KID_TAG: kid, JWT_ROLE_TAG: role},
            opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
        )

    def _jwks(self, name: str, args: KeysArgs, child: pulumi.ResourceOptions) -> aws.ssm.Parameter:
        """The ring's public keys as a JWK Set, where the application reads them (public data)."""

        def public_jwk(kid: str, key: aws.kms.Key) -> pulumi.Output[dict[str, str]]:
            found = aws.kms.get_public_key_output(key_id=key.arn, opts=pulumi.InvokeOutputOptions(parent=self))
            return found.public_key.apply(lambda der: jwk(base64.b64decode(der), kid, args.jwt_key_spec))

        public = [public_jwk(self.ring.kids[role], key) for role, key in self.jwt_keys.items()]
        return aws.ssm.Parameter(
            f"{name}-jwks",
            name=f"/askasia/{args.stack}/auth/jwks",
            description="JWT verification keys (JWKS): previous, current and next signing keys",
            type="String",
            value=pulumi.Output.all(*public).apply(lambda keys: json.dumps(jwks(list(keys)), sort_keys=True)),
            tags=dict(args.tags),
            opts=child,
        )

    def _jwt_config(self, name: str, args: KeysArgs, child: pulumi.ResourceOptions) -> aws.ssm.Parameter:
        ring = self.ring
        arns = pulumi.Output.all(*(key.arn for key in self.jwt_keys.values()))
        return aws.ssm.Parameter(
            f"{name}-jwt-config",
            name=f"/askasia/{args.stack}/auth/jwt",
            description="Access-token policy for the app: signing key and kid, algorithm, TTL, JWKS",
            type="SecureString",
            key_id=self.keys["secrets"].arn,
            value=pulumi.Output.all(arns, self.jwks_parameter.name).apply(
                lambda got: json.dumps(
                    token_policy(
                        issuer=args.jwt_issuer,
                        ring=ring,
                        key_arns=dict(zip(ring.kids.values(), got[0], strict=True)),
                        key_spec=args.jwt_key_spec,
                        ttl_seconds=args.access_token_ttl_minutes * 60,
                        max_ttl_seconds=MAX_ACCESS_TOKEN_TTL_MINUTES * 60,
                        jwks_parameter=got[1],
                    )
                )
            ),
            tags=dict(args.tags),
            # The JWKS with the new next key is published before the signing key changes.
            opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(depends_on=[self.jwks_parameter])),
        )
