"""The in-memory call store keeps memory bounded: ended calls, abandoned calls and a cap."""

from __future__ import annotations

from app.calls.memory_store import MemoryCallStore
from app.calls.models import CallRecord, ConnectionState


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def _write(
    store: MemoryCallStore, call_id: str, state: ConnectionState = ConnectionState.CONNECTED
) -> None:
    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or CallRecord(call_connection_id=call_id)
        return record.model_copy(update={"connection_state": state})

    await store.update(call_id, mutate)


async def _ids(store: MemoryCallStore) -> set[str]:
    return {record.call_connection_id for record in await store.list()}


async def test_ended_calls_stay_visible_for_their_ttl_then_go() -> None:
    clock = Clock()
    store = MemoryCallStore(ended_ttl_s=60, live_ttl_s=600, clock=clock)
    await _write(store, "ended", ConnectionState.DISCONNECTED)
    clock.now += 59
    await _write(store, "ended", ConnectionState.DISCONNECTED)  # a late event: TTL not renewed
    assert await _ids(store) == {"ended"}
    clock.now += 2
    assert await store.get("ended") is None


async def test_a_call_that_never_ends_expires_after_its_last_write() -> None:
    clock = Clock()
    store = MemoryCallStore(ended_ttl_s=60, live_ttl_s=600, clock=clock)
    await _write(store, "abandoned")
    await _write(store, "streaming")
    for _ in range(3):
        clock.now += 300
        await _write(store, "streaming")  # still written to: stays
    assert await _ids(store) == {"streaming"}


async def test_beyond_the_cap_ended_calls_go_first_then_the_least_recently_written() -> None:
    clock = Clock()
    store = MemoryCallStore(ended_ttl_s=3600, max_calls=3, live_ttl_s=7200, clock=clock)
    for call_id in ("old-live", "ended", "new-live"):
        clock.now += 1
        await _write(store, call_id)
    await _write(store, "ended", ConnectionState.DISCONNECTED)
    clock.now += 1
    await _write(store, "newest")
    assert await _ids(store) == {"old-live", "new-live", "newest"}
    clock.now += 1
    await _write(store, "old-live")  # written again: now the most recent
    await _write(store, "latest")
    assert await _ids(store) == {"old-live", "newest", "latest"}


async def test_memory_stays_bounded_over_many_unended_calls() -> None:
    store = MemoryCallStore(max_calls=100)
    for index in range(1000):
        await _write(store, f"call-{index}")
    assert len(await store.list()) == 100
    assert await store.get("call-999") is not None
    assert await store.get("call-0") is None


async def test_a_claim_is_won_once_until_it_expires_or_is_released() -> None:
    store = MemoryCallStore()
    assert await store.claim("callback:c1:e1", 3600)
    assert not await store.claim("callback:c1:e1", 3600)
    await store.release("callback:c1:e1")
    assert await store.claim("callback:c1:e1", 3600)


async def test_claims_stay_bounded_by_dropping_the_oldest() -> None:
    # max_calls=1 bounds claims at 16 (about ten callback events per call, and headroom).
    store = MemoryCallStore(max_calls=1)
    assert await store.claim("oldest", 3600)
    for n in range(16):
        assert await store.claim(f"callback:c1:e{n}", 3600)
    assert await store.claim("oldest", 3600)  # dropped to stay within the bound: won again
    assert not await store.claim("callback:c1:e15", 3600)  # the newest are still held
