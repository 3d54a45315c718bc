"""Futurisys attrition service: predicts which employees are likely to leave."""

from importlib.metadata import PackageNotFoundError, version

try:
    # One version source: pyproject.toml, read back from the installed distribution's metadata.
    __version__ = version("futurisys-attrition")
except PackageNotFoundError:  # pragma: no cover - running from a tree that was never installed
    __version__ = "0+unknown"
