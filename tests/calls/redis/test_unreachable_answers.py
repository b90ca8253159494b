"""With its Redis stopped, the bridge says so: `/readyz` and the refused webhook name the store."""

from __future__ import annotations

import json

import httpx

from app.embedded_acs import embedded_acs
from app.emulator import AcsEmulator
from app.main import create_app
from app.server import bind_socket, serve_in_background
from app.settings import Settings
from tests.calls.redis.conftest import RedisServer
from tests.conftest import AppFactory


async def test_readyz_names_the_unreachable_redis(
    start_app: AppFactory, redis_server: RedisServer, redis_prefix: str
) -> None:
    async with start_app(redis_url=redis_server.url, redis_key_prefix=redis_prefix) as live:
        ready = await live.client.get("/readyz")
        assert ready.status_code == 200
        assert "store_error" not in ready.json()

        await redis_server.stop()
        ready = await live.client.get("/readyz")
        assert ready.status_code == 503
        assert ready.json()["checks"]["store"] is False
        assert ready.json()["store_error"] == (
            f"store unreachable: 127.0.0.1:{redis_server.port}: Connection refused"
        )


async def test_a_test_call_refused_for_want_of_redis_says_so(
    start_app: AppFactory, emulator: AcsEmulator, redis_server: RedisServer, redis_prefix: str
) -> None:
    async with start_app(redis_url=redis_server.url, redis_key_prefix=redis_prefix) as live:
        await redis_server.stop()
        delivery = await emulator.place_incoming_call(live.webhook_url)
        refused = delivery.deliveries[0]
        assert refused.status == 503
        assert json.loads(refused.body)["error"] == {
            "code": "store_unavailable",
            "message": f"store unreachable: 127.0.0.1:{redis_server.port}: Connection refused; "
            "retry shortly",
        }
        assert not [r for r in emulator.requests if r.path.endswith(":answer")]


async def test_the_consoles_test_call_names_the_unreachable_redis(
    redis_server: RedisServer, redis_prefix: str
) -> None:
    # The service on its embedded emulator, as `acs-bridge serve` runs with no ACS settings.
    sock = bind_socket()
    local = f"http://127.0.0.1:{sock.getsockname()[1]}"
    base = Settings(_env_file=None, redis_url=redis_server.url, redis_key_prefix=redis_prefix)
    async with embedded_acs(base, public_base_url=local) as acs:
        app = create_app(acs.settings, emulator=acs.emulator)
        async with (
            serve_in_background(app, sock=sock, settings=acs.settings) as server,
            httpx.AsyncClient(base_url=server.base_url, timeout=15) as api,
        ):
            await redis_server.stop()
            placed = await api.post("/api/emulator/calls", json={})
    assert placed.status_code == 502
    message = placed.json()["error"]["message"]
    assert message.startswith(
        f"the webhook answered 503: store unreachable: 127.0.0.1:{redis_server.port}: "
        "Connection refused"
    )
