"""What the Pulumi program and the `provision` tool share, declared once and dependency-free.

The stack-outputs shape (outputs.py), the plan tiers and what each keeps (tiers.py), the KMS key
purposes (kms.py) and the retention values CloudWatch Logs accepts (logs.py). Nothing here
imports a third-party package or another room of this project.
"""
