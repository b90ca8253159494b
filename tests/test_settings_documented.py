"""Every setting is documented in `.env.example`, and nothing there is unknown to `Settings`."""

from __future__ import annotations

import re
from pathlib import Path

from app.settings import Settings

ENV_EXAMPLE = Path(__file__).resolve().parent.parent / ".env.example"
# Read by docker-compose.yml from the same `.env`, never by the bridge.
COMPOSE_ONLY = {"REDIS_PASSWORD", "COMPOSE_PROFILES"}


def _documented() -> set[str]:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    return {m.group(1) for m in re.finditer(r"^#?\s*([A-Z][A-Z0-9_]+)=", text, re.MULTILINE)}


def test_every_setting_is_in_env_example() -> None:
    missing = {name.upper() for name in Settings.model_fields} - _documented()
    assert not missing, f"settings missing from .env.example: {sorted(missing)}"


def test_env_example_names_only_real_settings() -> None:
    known = {name.upper() for name in Settings.model_fields} | COMPOSE_ONLY
    unknown = sorted(_documented() - known)
    assert not unknown, f".env.example names unknown settings: {unknown}"


def test_compose_only_names_are_not_settings() -> None:
    # A name in both would be set for the bridge by accident.
    assert not COMPOSE_ONLY & {name.upper() for name in Settings.model_fields}
    assert _documented() >= COMPOSE_ONLY
