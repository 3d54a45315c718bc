"""API keys, roles and request limits: the domain side of security (no HTTP here)."""
