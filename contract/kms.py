"""The customer-managed KMS keys each region has, by purpose (the `kms` map of the outputs)."""

from __future__ import annotations

# "secrets" encrypts the app credentials the provisioner stores in Secrets Manager;
# "jwt_signing" is asymmetric (sign/verify); the others encrypt data at rest.
KMS_PURPOSES = ("data", "logs", "backup", "secrets", "jwt_signing")
SYMMETRIC_PURPOSES = ("data", "logs", "backup", "secrets")
