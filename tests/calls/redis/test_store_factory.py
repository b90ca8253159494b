"""REDIS_URL chooses where call state lives; the app starts and reports readiness either way."""

from __future__ import annotations

from contextlib import AsyncExitStack

from app.calls.call_bus import MemoryCallBus
from app.calls.memory_store import MemoryCallStore
from app.calls.models import CallRecord
from app.calls.redis_bus import RedisCallBus
from app.calls.redis_store import RedisCallStore
from app.calls.store_factory import open_call_storage
from app.settings import Settings
from tests.calls.redis.conftest import closed_port
from tests.conftest import AppFactory


async def test_without_redis_url_state_lives_in_memory() -> None:
    async with AsyncExitStack() as stack:
        storage = await open_call_storage(Settings(_env_file=None), stack)
        assert isinstance(storage.store, MemoryCallStore)
        assert isinstance(storage.bus, MemoryCallBus)


async def test_with_redis_url_state_is_shared_through_redis(
    redis_url: str, redis_prefix: str
) -> None:
    settings = Settings(_env_file=None, redis_url=redis_url, redis_key_prefix=redis_prefix)
    async with AsyncExitStack() as stack:
        a = await open_call_storage(settings, stack)
        b = await open_call_storage(settings, stack)
        assert isinstance(a.store, RedisCallStore)
        assert isinstance(a.bus, RedisCallBus)
        a.writer.submit("c1", lambda _: CallRecord(call_connection_id="c1"))
        assert await a.writer.flush(10)
        assert [r.call_connection_id for r in await b.store.list()] == ["c1"]


async def test_app_with_redis_is_ready(
    start_app: AppFactory, redis_url: str, redis_prefix: str
) -> None:
    async with start_app(redis_url=redis_url, redis_key_prefix=redis_prefix) as live:
        ready = await live.client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["store"] is True


async def test_app_starts_but_is_not_ready_while_redis_is_unreachable(
    start_app: AppFactory,
) -> None:
    async with start_app(redis_url=f"redis://127.0.0.1:{closed_port()}/0") as live:
        ready = await live.client.get("/readyz")
        alive = await live.client.get("/healthz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["store"] is False
    assert alive.status_code == 200
