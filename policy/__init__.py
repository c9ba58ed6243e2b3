"""Compliance as code: transfer gate (transfers.py), rules (rules/), engine, CrossGuard adapter."""
