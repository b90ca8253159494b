"""Shared fixtures: real servers on 127.0.0.1 ephemeral ports, no mocks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

CORPUS = Path(__file__).parent / "corpus"


def load_corpus(relative: str) -> Any:
    """A payload from tests/corpus (copied from Microsoft's examples in shared/corpus)."""
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


@pytest.fixture
def corpus() -> Path:
    return CORPUS
