from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from app.server import serve_in_background
from app.settings import Settings
from tests.conftest import LiveApp


async def test_without_acs_settings_the_app_runs_on_the_embedded_emulator() -> None:
    app = create_app(Settings(_env_file=None))
    async with (
        serve_in_background(app) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        # The lifespan started an ACS emulator as this app's ACS: ready for test calls.
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"] == {
            "store": True,
            "acs_configured": True,
            "accepting_calls": True,
        }
        assert (await client.get("/api/console/config")).json()["emulator"] is True


async def test_readyz_is_ready_with_acs_configured(live_app: LiveApp) -> None:
    ready = await live_app.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_openai_backend_without_a_key_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        Settings(_env_file=None, media_backend="openai")
