"""A store and a bus whose Redis does not answer: reads fail, writes wait, nothing crashes."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest

from app.calls.models import CallRecord
from app.calls.store import StoreUnavailable
from app.calls.write_behind import StateWriter
from tests.calls.redis.conftest import FAST_BACKOFF, BusFactory, StoreFactory, closed_port


@pytest.fixture
def nowhere() -> str:
    return f"redis://:hunter2@127.0.0.1:{closed_port()}/0"


def unreachable(url: str) -> str:
    """What the store says when nothing listens at `url`'s host and port."""
    return re.escape(f"store unreachable: 127.0.0.1:{urlsplit(url).port}: Connection refused")


def new_call(current: CallRecord | None) -> CallRecord:
    return CallRecord(call_connection_id="c1")


async def test_ping_raises_naming_the_redis_and_why(open_store: StoreFactory, nowhere: str) -> None:
    store = await open_store(nowhere)
    with pytest.raises(StoreUnavailable, match=f"^{unreachable(nowhere)}$") as caught:
        await store.ping()
    assert "hunter2" not in str(caught.value)


async def test_get_raises_store_unavailable(open_store: StoreFactory, nowhere: str) -> None:
    store = await open_store(nowhere)
    with pytest.raises(StoreUnavailable, match=f"^{unreachable(nowhere)}$"):
        await store.get("c1")


async def test_list_raises_store_unavailable(open_store: StoreFactory, nowhere: str) -> None:
    store = await open_store(nowhere)
    with pytest.raises(StoreUnavailable):
        await store.list()


async def test_update_raises_store_unavailable(open_store: StoreFactory, nowhere: str) -> None:
    store = await open_store(nowhere)
    with pytest.raises(StoreUnavailable):
        await store.update("c1", new_call)


async def test_claim_raises_rather_than_risk_a_second_answer(
    open_store: StoreFactory, nowhere: str
) -> None:
    store = await open_store(nowhere)
    with pytest.raises(StoreUnavailable, match=f"^{unreachable(nowhere)}$"):
        await store.claim("incoming:1", 60)


async def test_release_does_not_raise(open_store: StoreFactory, nowhere: str) -> None:
    store = await open_store(nowhere)
    await store.release("incoming:1")


async def test_writer_accepts_writes_and_keeps_them_pending(
    open_store: StoreFactory, nowhere: str
) -> None:
    writer = StateWriter(await open_store(nowhere), backoff=FAST_BACKOFF)
    writer.submit("c1", new_call)
    writer.submit("c1", new_call, supersedes="progress")
    assert not await writer.flush(0.3)
    assert writer.pending >= 2
    await writer.close(grace_s=0)
    assert writer.pending == 0


async def test_bus_starts_serves_and_closes_without_raising(
    open_bus: BusFactory, nowhere: str
) -> None:
    async def handler(_: object) -> dict[str, object]:
        return {}

    bus = await open_bus("a", nowhere)
    async with bus.serve("c1", handler):
        pass


async def test_bus_request_raises_store_unavailable(open_bus: BusFactory, nowhere: str) -> None:
    bus = await open_bus("a", nowhere)
    with pytest.raises(StoreUnavailable):
        await bus.request("c1", "stop_audio")


async def test_bus_held_raises_store_unavailable(open_bus: BusFactory, nowhere: str) -> None:
    bus = await open_bus("a", nowhere)
    with pytest.raises(StoreUnavailable):
        await bus.held(["c1"])
