"""Fixtures the unit tests share."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from integration_agent.catalog import Catalog
from integration_agent.knowledge import KnowledgeBase


@pytest.fixture
def kb(root: Path, tmp_path: Path) -> Iterator[KnowledgeBase]:
    """A knowledge base over the test module's own ``root`` folder of integrations, its cache and learned
    notes under tmp_path."""
    with KnowledgeBase(tmp_path / "cache" / "kb.sqlite", Catalog([(root, "test")]),
                       learned_dir=tmp_path / "data" / "learned") as base:
        yield base
