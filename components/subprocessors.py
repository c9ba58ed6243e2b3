"""Sub-processor plumbing: email delivery (SES) and the payment processor's credentials.

Every taggable resource carries `askasia:subprocessor=<name>`, so the sub-processor list can be
checked against what is deployed. Payment credentials live in Secrets Manager under the secrets
key; rotation runs through the Lambda named in config, and its absence is flagged (tag + warning)
rather than hidden.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from operator import itemgetter

import pulumi
import pulumi_aws as aws

from stackconfig.config import EmailConfig, PaymentsConfig

SUBPROCESSOR_TAG = "askasia:subprocessor"
ROTATION_TAG = "askasia:rotation"


@dataclass(frozen=True)
class SubprocessorsArgs:
    stack: str
    secrets_key_arn: pulumi.Input[str]
    email: EmailConfig
    payments: PaymentsConfig
    hosted_zone_id: str  # where the email domain's DKIM records go
    # Recoverable for the longest window Secrets Manager allows after a deletion.
    secret_recovery_window_days: int = 30
    tags: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not 7 <= self.secret_recovery_window_days <= 30:
            raise ValueError("secret_recovery_window_days must be within 7..30")


class Subprocessors(pulumi.ComponentResource):
    """SES identity with DKIM and a TLS-required configuration set; payment secret + rotation."""

    email_identity: aws.sesv2.EmailIdentity
    configuration_set: aws.sesv2.ConfigurationSet
    payment_secret: aws.secretsmanager.Secret
    rotation: aws.secretsmanager.SecretRotation | None

    def __init__(self, name: str, args: SubprocessorsArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("askasia:platform:Subprocessors", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self._email(name, args, child)
        self._payments(name, args, child)
        self.register_outputs(
            {
                "email_identity": self.email_identity.arn,
                "configuration_set": self.configuration_set.configuration_set_name,
                "payment_secret_arn": self.payment_secret.arn,
            }
        )

    def _email(self, name: str, args: SubprocessorsArgs, child: pulumi.ResourceOptions) -> None:
        email = args.email
        tags = {**args.tags, SUBPROCESSOR_TAG: email.name}
        self.configuration_set = aws.sesv2.ConfigurationSet(
            f"{name}-email-config",
            configuration_set_name=f"askasia-{args.stack}",
            # Refuse to hand mail to a receiving server that will not take it over TLS.
            delivery_options=aws.sesv2.ConfigurationSetDeliveryOptionsArgs(tls_policy="REQUIRE"),
            reputation_options=aws.sesv2.ConfigurationSetReputationOptionsArgs(reputation_metrics_enabled=True),
            sending_options=aws.sesv2.ConfigurationSetSendingOptionsArgs(sending_enabled=True),
            tags=tags,
            opts=child,
        )
        self.email_identity = aws.sesv2.EmailIdentity(
            f"{name}-email-domain",
            email_identity=email.domain,
            configuration_set_name=self.configuration_set.configuration_set_name,
            dkim_signing_attributes=aws.sesv2.EmailIdentityDkimSigningAttributesArgs(
                next_signing_key_length="RSA_2048_BIT"
            ),
            tags=tags,
            opts=child,
        )
        # Easy DKIM: three CNAMEs under the domain prove it and sign outgoing mail.
        tokens = self.email_identity.dkim_signing_attributes.apply(_dkim_tokens)
        for i in range(3):
            token = tokens.apply(itemgetter(i))
            aws.route53.Record(
                f"{name}-email-dkim-{i}",
                zone_id=args.hosted_zone_id,
                name=token.apply(lambda t: f"{t}._domainkey.{email.domain}"),
                type="CNAME",
                ttl=1800,
                records=[token.apply(lambda t: f"{t}.dkim.amazonses.com")],
                opts=child,
            )

    def _payments(self, name: str, args: SubprocessorsArgs, child: pulumi.ResourceOptions) -> None:
        payments = args.payments
        rotation_state = "lambda" if payments.rotation_lambda_arn else "unconfigured"
        self.payment_secret = aws.secretsmanager.Secret(
            f"{name}-payments-secret",
            name=f"askasia/{args.stack}/subprocessors/{payments.name}/api-key",
            description=f"{payments.name} API credentials (value set out of band, never in config)",
            kms_key_id=args.secrets_key_arn,
            recovery_window_in_days=args.secret_recovery_window_days,
            tags={**args.tags, SUBPROCESSOR_TAG: payments.name, ROTATION_TAG: rotation_state},
            opts=child,
        )
        self.rotation = None
        if payments.rotation_lambda_arn:
            self.rotation = aws.secretsmanager.SecretRotation(
                f"{name}-payments-rotation",
                secret_id=self.payment_secret.id,
                rotation_lambda_arn=payments.rotation_lambda_arn,
                rotation_rules=aws.secretsmanager.SecretRotationRotationRulesArgs(
                    automatically_after_days=payments.rotation_days
                ),
                # The first rotation would replace the operator's key before the Lambda is proven.
                rotate_immediately=False,
                opts=child,
            )
        else:
            pulumi.log.warn(
                f"{payments.name} credentials have no rotation: set askasia:subprocessors.payments."
                f"rotationLambdaArn (secret tagged {ROTATION_TAG}=unconfigured)"
            )


def _dkim_tokens(attributes: aws.sesv2.outputs.EmailIdentityDkimSigningAttributes) -> Sequence[str]:
    if not attributes.tokens:
        raise ValueError("SES returned no Easy DKIM tokens for the email identity")
    return attributes.tokens
