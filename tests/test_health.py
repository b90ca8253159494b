from __future__ import annotations

import httpx

from app.main import create_app
from app.server import serve_in_background
from app.settings import Settings


async def test_healthz_and_readyz_answer_on_a_real_socket() -> None:
    app = create_app(Settings(_env_file=None))
    async with (
        serve_in_background(app) as server,
        httpx.AsyncClient(base_url=server.base_url) as client,
    ):
        assert (await client.get("/healthz")).json() == {"status": "ok"}
        ready = await client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json()["checks"]["store"] is True
