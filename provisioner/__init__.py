"""Askasia platform provisioner: post-deploy SQL, isolation verifier, lifecycle and local stack."""
