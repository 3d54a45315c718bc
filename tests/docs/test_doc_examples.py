"""The recorded API exchanges of docs/api.md (make api-examples): present, well formed, redacted."""

from __future__ import annotations

import json
import re

import pytest

from attrition.config import PROJECT_ROOT

API_PAGE = PROJECT_ROOT / "docs" / "api.md"
INCLUDES = re.findall(
    r'--8<-- "(docs/exemples/[\w-]+\.json)"', API_PAGE.read_text(encoding="utf-8")
)
RAW_KEY = re.compile(r"ftr_[0-9a-z]{8}_[0-9A-Za-z]{6,}")


def test_the_api_page_includes_recorded_exchanges() -> None:
    assert len(INCLUDES) >= 15
    assert "exemple illustratif" not in API_PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize("relative", INCLUDES)
def test_each_exchange_is_real_and_redacted(relative: str) -> None:
    text = (PROJECT_ROOT / relative).read_text(encoding="utf-8")
    record = json.loads(text)
    assert set(record) == {"requete", "statut", "en_tetes", "corps"}
    method, path = record["requete"].split(" ", 1)
    assert method in {"GET", "POST", "DELETE"} and path.startswith("/")
    assert record["en_tetes"]["x-request-id"].startswith("exemple-")
    assert record["en_tetes"]["content-type"].startswith(
        "application/problem+json" if record["statut"] >= 400 else "application/json"
    )
    assert not RAW_KEY.search(text), "an API key was not redacted"
    assert "/tmp/" not in text
