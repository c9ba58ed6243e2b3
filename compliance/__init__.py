"""Compliance records and what is built from them: the transfer gate (transfers.py over
transfers.yaml) and the sub-processor and transfer register (register.py over subprocessors.yaml,
rendered with templates/). The records are package data: a change to them is a reviewed release."""
