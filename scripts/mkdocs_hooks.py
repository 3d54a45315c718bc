"""MkDocs hooks: the site works offline and from file://.

Material for MkDocs loads Mermaid from a CDN unless a global ``mermaid`` already exists. The
site lists ``javascripts/mermaid.min.js`` in ``extra_javascript``; this hook copies that file
from the pinned npm copy that ``make docs`` installs in ``.cache/mermaid``. Without it (no
npm), the page falls back to the CDN and the build says so.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MERMAID = ROOT / ".cache" / "mermaid" / "node_modules" / "mermaid" / "dist" / "mermaid.min.js"
TARGET = Path("javascripts") / "mermaid.min.js"

log = logging.getLogger("mkdocs.hooks.offline")


def on_post_build(config: Any, **_: Any) -> None:
    target = Path(config["site_dir"]) / TARGET
    if MERMAID.is_file():
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(MERMAID, target)
    else:
        log.info(
            "Mermaid absent de .cache/mermaid (make docs l'installe) : les diagrammes "
            "seront chargés depuis un CDN."
        )
