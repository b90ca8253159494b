from __future__ import annotations

import httpx
import pytest
from pydantic import ValidationError

from app.main import create_app
from app.server import serve_in_background
from app.settings import Settings
from tests.conftest import LiveApp


async def test_healthz_and_readyz_answer_on_a_real_socket() -> None:
    app = create_app(Settings(_env_file=None))
    async with (
        serve_in_background(app) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        # No ACS configured: alive, but not ready to take calls.
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"] == {"store": True, "acs_configured": False}


async def test_readyz_is_ready_with_acs_configured(live_app: LiveApp) -> None:
    ready = await live_app.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ready"


def test_openai_backend_without_a_key_is_refused_at_startup() -> None:
    with pytest.raises(ValidationError, match="OPENAI_API_KEY"):
        Settings(_env_file=None, media_backend="openai")
