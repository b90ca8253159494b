"""Redis stops mid-call and comes back: writes wait and land, readiness returns, the bus resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest

from app.calls.call_bus import BusCommand, CallBusError
from app.calls.models import CallRecord
from app.calls.store import Mutation, StoreUnavailable
from app.calls.write_behind import StateWriter
from tests.calls.redis.conftest import (
    FAST_BACKOFF,
    BusFactory,
    RedisServer,
    StoreFactory,
    eventually,
)


def progress(n: int) -> Mutation:
    """A media-progress snapshot that (re)creates the record, as `media_connected` does."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or CallRecord(call_connection_id="c1")
        return record.model_copy(update={"metrics": {**record.metrics, "progress": n}})

    return mutate


def event(name: str) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord:
        return (current or CallRecord(call_connection_id="c1")).with_event(name)

    return mutate


async def test_writes_made_while_redis_is_down_land_when_it_returns(
    redis_server: RedisServer, open_store: StoreFactory
) -> None:
    store = await open_store(redis_server.url)
    writer = StateWriter(store, backoff=FAST_BACKOFF)
    await store.update("c1", event("MediaConnected"))
    await redis_server.stop(keep_data=True)

    for n in range(1, 4):
        writer.submit("c1", progress(n), supersedes="progress")
    writer.submit("c1", event("MediaDisconnected"))
    assert not await writer.flush(0.2)
    with pytest.raises(StoreUnavailable):
        await store.ping()
    with pytest.raises(StoreUnavailable):
        await store.get("c1")

    await redis_server.start()
    assert await writer.flush(10)
    record = await store.get("c1")
    assert record is not None
    assert record.metrics == {"progress": 3}
    assert [e.type for e in record.recent_events] == ["MediaConnected", "MediaDisconnected"]
    await writer.close()


async def test_state_is_rebuilt_when_redis_returns_empty(
    redis_server: RedisServer, open_store: StoreFactory
) -> None:
    store = await open_store(redis_server.url)
    writer = StateWriter(store, backoff=FAST_BACKOFF)
    await store.update("c1", progress(0))
    await redis_server.stop()
    writer.submit("c1", progress(1), supersedes="progress")
    await redis_server.start()
    assert await writer.flush(10)
    assert [r.metrics for r in await store.list()] == [{"progress": 1}]
    await writer.close()


async def test_ping_turns_true_again_when_redis_returns(
    redis_server: RedisServer, open_store: StoreFactory
) -> None:
    store = await open_store(redis_server.url)
    await redis_server.stop()
    with pytest.raises(StoreUnavailable, match=f"store unreachable: 127.0.0.1:{redis_server.port}"):
        await store.ping()
    await redis_server.start()
    assert await store.ping()


async def test_release_made_while_redis_is_down_lands_when_it_returns(
    redis_server: RedisServer, open_store: StoreFactory
) -> None:
    a, b = await open_store(redis_server.url), await open_store(redis_server.url)
    assert await a.claim("incoming:1", 600)
    await redis_server.stop(keep_data=True)
    await a.release("incoming:1")
    await redis_server.start()

    async def reclaimed() -> bool:
        return await b.claim("incoming:1", 600)

    await eventually(reclaimed)


async def test_bus_serves_the_call_again_after_redis_restarts(
    redis_server: RedisServer, open_bus: BusFactory
) -> None:
    async def answer(command: BusCommand) -> Mapping[str, Any]:
        return {"ok": True}

    owner, requester = await open_bus("a", redis_server.url), await open_bus("b", redis_server.url)
    async with owner.serve("c1", answer):
        await redis_server.stop()
        await redis_server.start()

        async def answered() -> bool:
            try:
                return (await requester.request("c1", "ping", timeout_s=1)).result == {"ok": True}
            except (StoreUnavailable, CallBusError):
                return False

        await eventually(answered)


async def test_request_in_flight_when_redis_stops_fails_as_unavailable(
    redis_server: RedisServer, open_bus: BusFactory
) -> None:
    started = asyncio.Event()

    async def hang(command: BusCommand) -> Mapping[str, Any]:
        started.set()
        await asyncio.Event().wait()
        return {}

    owner, requester = await open_bus("a", redis_server.url), await open_bus("b", redis_server.url)
    async with owner.serve("c1", hang):
        request = asyncio.create_task(requester.request("c1", "stop_audio", timeout_s=30))
        await asyncio.wait_for(started.wait(), 10)
        await redis_server.stop()
        with pytest.raises(StoreUnavailable):
            await asyncio.wait_for(request, 10)
