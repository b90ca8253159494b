"""Shared fixtures: real servers on 127.0.0.1 ephemeral ports, no mocks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.emulator import AcsEmulator

CORPUS = Path(__file__).parent / "corpus"


def load_corpus(relative: str) -> Any:
    """A payload from tests/corpus (copied from Microsoft's examples in shared/corpus)."""
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture
async def emulator() -> AsyncIterator[AcsEmulator]:
    """A started ACS emulator on 127.0.0.1:0 (HMAC-checked REST, callbacks, Event Grid)."""
    async with AcsEmulator() as emu:
        yield emu
