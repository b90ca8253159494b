"""Lines fixtures: an agents file in a temporary directory, and a record of which agent's
settings each call's backend was built with."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from app.backends.base import Backend
from app.settings import Settings
from tests.conftest import LiveApp

SALES = "+18005550100"
SUPPORT = "+18005550101"


@pytest.fixture
def agents_file(tmp_path: Path) -> Callable[[dict[str, Any]], Path]:
    """Write `document` as the agents file (JSON) and return its path."""
    path = tmp_path / "agents.json"

    def write(document: dict[str, Any]) -> Path:
        path.write_text(json.dumps(document), encoding="utf-8")
        return path

    return write


def record_backends(live: LiveApp) -> list[Settings]:
    """The settings each new backend of `live` is built with, in order (the real factory
    still builds it)."""
    built: list[Settings] = []
    factory = live.services.backend_factory

    def recording(settings: Settings) -> Backend:
        built.append(settings)
        return factory(settings)

    live.services.backend_factory = recording
    return built
