"""Reliability fixtures: the figures collector."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.reliability.figures import Figures


@pytest.fixture(scope="session")
def figures() -> Iterator[Figures]:
    """What the reliability tests measured; merged into reports/fiabilite.json at the end."""
    collected = Figures()
    yield collected
    if collected.sections or collected.faults:
        collected.merge_into()
