"""The local embedded stack: PostgreSQL cells over TLS plus a moto server, on loopback only."""
