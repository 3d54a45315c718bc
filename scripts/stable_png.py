"""Write a screenshot only when it really changed, so a fresh clone rebuilds what is committed.

Two runs of the same page differ by a few anti-aliased pixels (font hinting, sub-pixel
layout). The values that change at every run (dates, key and request identifiers, checksums)
are masked before the capture (``MASK_SELECTOR``, ``MASK_COLOR``); what is left is compared
with the committed file, and the file is rewritten only when more than ``TOLERANCE`` of its
pixels changed visibly, as visual-regression tools do (Playwright's ``maxDiffPixelRatio``).
"""

from __future__ import annotations

import io
from pathlib import Path

#: Elements whose text changes at every run: painted over in the captures.
MASK_SELECTOR = "[data-volatile]"
MASK_COLOR = "#dfe1ea"
#: Share of pixels that may differ (each by more than ``PIXEL_DELTA``) and still be "the same".
TOLERANCE = 0.01
PIXEL_DELTA = 24


def changed_share(old: bytes, new: bytes) -> float:
    """Share of pixels that differ visibly between two PNG images (1.0 if sizes differ)."""
    from PIL import Image, ImageChops

    a = Image.open(io.BytesIO(old)).convert("RGB")
    b = Image.open(io.BytesIO(new)).convert("RGB")
    if a.size != b.size:
        return 1.0
    diff = ImageChops.difference(a, b).convert("L").point(lambda v: 255 if v > PIXEL_DELTA else 0)
    histogram = diff.histogram()
    return histogram[255] / (a.size[0] * a.size[1])


def write_if_changed(path: Path, png: bytes) -> bool:
    """Write ``png`` to ``path`` unless the file already shows the same image; True if written."""
    if path.is_file() and changed_share(path.read_bytes(), png) <= TOLERANCE:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(png)
    return True
