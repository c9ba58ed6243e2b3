"""All compliance rules. Importing this package registers every rule module."""

from policy.rules import cloudtrail, jwt, kms, logs, rds, s3, secrets, stack  # noqa: F401  (registers)
from policy.rules.base import RULES, STACK_RULES, Resource, Rule, StackRule

__all__ = ["RULES", "STACK_RULES", "Resource", "Rule", "StackRule"]
