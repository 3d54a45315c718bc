"""Rewrite the generated regions of hand-written pages from their one source.

``docs/rgpd.md`` holds ``<!-- entrees -->`` … ``<!-- /entrees -->``: what a prediction asks
for, rendered by :func:`attrition.data.vocabulary.inputs_markdown`, the text the model card
(``attrition model report``) renders too. ``tests/unit/test_docs_inputs.py`` fails when a page
drifts from it.
"""

from __future__ import annotations

import re
import sys

from attrition.config import PROJECT_ROOT
from attrition.data.vocabulary import inputs_markdown

REGIONS = {("rgpd.md", "entrees"): inputs_markdown}


def main() -> int:
    for (page, name), render in REGIONS.items():
        path = PROJECT_ROOT / "docs" / page
        text = path.read_text(encoding="utf-8")
        pattern = re.compile(rf"(<!-- {name} -->\n)(.*?)(<!-- /{name} -->)", re.S)
        if not pattern.search(text):
            print(f"{path} : région « {name} » absente", file=sys.stderr)
            return 1
        body = render()
        path.write_text(
            pattern.sub(lambda m, body=body: m.group(1) + body + m.group(3), text), "utf-8"
        )
        print(f"{path.relative_to(PROJECT_ROOT)} : région « {name} » à jour.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
