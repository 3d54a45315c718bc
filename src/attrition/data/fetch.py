"""Downloading the public copies of the extracts, checked against their known SHA-256."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import httpx

from attrition.data import vocabulary as v
from attrition.errors import DataFileError


def fetch_extracts(
    target: Path,
    *,
    base_url: str = v.DATA_URL_BASE,
    client: httpx.Client | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Path]:
    """Download every missing extract into ``target``; refuse a file whose checksum differs."""
    target.mkdir(parents=True, exist_ok=True)
    own = client is None
    http = client or httpx.Client(timeout=30, follow_redirects=True)
    written = []
    try:
        for name, expected in v.EXTRACT_SHA256.items():
            path = target / name
            if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == expected:
                progress(f"{name} : déjà présent et vérifié")
                continue
            progress(f"{name} : téléchargement…")
            try:
                response = http.get(base_url + name)
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise DataFileError(name, None, None, f"téléchargement impossible ({exc})") from exc
            digest = hashlib.sha256(response.content).hexdigest()
            if digest != expected:
                raise DataFileError(
                    name, None, None, "somme SHA-256 inattendue après téléchargement"
                )
            path.write_bytes(response.content)
            written.append(path)
        sums = "".join(f"{h}  {n}\n" for n, h in sorted(v.EXTRACT_SHA256.items()))
        (target / "SHA256SUMS").write_text(sums)
    finally:
        if own:
            http.close()
    return written
