"""The embedded PostgreSQL's command chatter is shown only with LOG_LEVEL=DEBUG."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from attrition.config import Settings
from attrition.logs import configure_logging


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    pg_level = logging.getLogger("pgserver").level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("pgserver").setLevel(pg_level)


@pytest.mark.parametrize(("level", "shown"), [("INFO", False), ("WARNING", False), ("DEBUG", True)])
def test_pgserver_info_only_in_debug(restore_logging: None, level: str, shown: bool) -> None:
    configure_logging(Settings(log_level=level))
    chatter = logging.getLogger("pgserver._commands")
    assert chatter.isEnabledFor(logging.INFO) is shown
    assert chatter.isEnabledFor(logging.WARNING)
