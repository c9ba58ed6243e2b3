"""Pulumi ComponentResources for one hardened Askasia region, one concern per module."""
