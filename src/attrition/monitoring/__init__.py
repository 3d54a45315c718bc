"""Watching the service in production: Prometheus metrics, access logs and input drift."""
