"""The isolation verifier: catalog checks (sql/verify/), ledger drift and behaviour probes."""
