"""The data lifecycle: audit retention, closure and purge, export, data-subject requests."""
