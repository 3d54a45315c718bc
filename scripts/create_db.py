"""Create the database and apply the migrations (same as `attrition db create`)."""

from __future__ import annotations

import sys

from attrition.cli import app

if __name__ == "__main__":
    sys.argv = ["attrition", "db", "create"]
    app()
