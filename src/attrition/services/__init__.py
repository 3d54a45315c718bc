"""Use cases shared by the API, the web interface and the CLI (transport-independent)."""
