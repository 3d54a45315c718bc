"""Deployment settings: framing origins, the demo flag, and no setting that nothing reads."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from attrition.config import PROJECT_ROOT, Settings, load_settings
from attrition.errors import ConfigurationError

SRC = PROJECT_ROOT / "src" / "attrition"


def test_frame_ancestors_default_to_none() -> None:
    assert Settings().api.frame_ancestors == []


def test_frame_ancestors_accept_origins() -> None:
    settings = Settings(
        api={"frame_ancestors": ["https://huggingface.co", "http://localhost:8080"]}
    )
    assert settings.api.frame_ancestors == ["https://huggingface.co", "http://localhost:8080"]


@pytest.mark.parametrize(
    "origin",
    ["*", "https://*.hf.space", "huggingface.co", "https://huggingface.co/spaces", "'self'"],
)
def test_frame_ancestors_refuse_anything_but_an_origin(origin: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings(api={"frame_ancestors": [origin]})
    assert "frame_ancestors" in caught.value.message
    assert "origine invalide" in caught.value.message


def test_frame_ancestors_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTRITION_API__FRAME_ANCESTORS", '["https://huggingface.co"]')
    assert Settings().api.frame_ancestors == ["https://huggingface.co"]


def test_ephemeral_flag_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().allow_ephemeral_db is False
    monkeypatch.setenv("ATTRITION_ALLOW_EPHEMERAL_DB", "1")
    assert Settings().allow_ephemeral_db is True


def test_every_setting_is_read_somewhere() -> None:
    """A documented setting that no code reads (ATTRITION_MODEL_DIR was one) misleads."""
    code = "\n".join(
        p.read_text(encoding="utf-8") for p in SRC.rglob("*.py") if p.name != "config.py"
    )
    config = (SRC / "config.py").read_text(encoding="utf-8")
    unread = []
    for group, model in (("", Settings), ("db.", Settings().db), ("api.", Settings().api)):
        for name in type(model).model_fields if not isinstance(model, type) else model.model_fields:
            if name in {"db", "api"}:
                continue
            used = re.search(rf"\.{name}\b", code) or re.search(rf"self\.{name}\b", config)
            if not used:
                unread.append(group + name)
    assert unread == []


def test_no_model_dir_documented_or_set() -> None:
    for path in ("Dockerfile", "docs/deploiement.md", "docs/installation.md"):
        assert "ATTRITION_MODEL_DIR" not in (PROJECT_ROOT / path).read_text(encoding="utf-8"), path


def test_prod_still_refuses_a_placeholder_secret() -> None:
    with pytest.raises(ConfigurationError):
        load_settings(app_env="prod", pgdata="/data/pgdata", secret_key=SecretStr("changeme"))
