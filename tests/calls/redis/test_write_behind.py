"""StateWriter on a store that always answers: order, coalescing, bounds, bad mutations, close."""

from __future__ import annotations

import pytest

from app.calls.memory_store import MemoryCallStore
from app.calls.models import CallRecord
from app.calls.store import Mutation
from app.calls.write_behind import StateWriter
from tests.calls.redis.conftest import StoreFactory


def event(name: str) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord:
        return (current or CallRecord(call_connection_id="c1")).with_event(name)

    return mutate


def broken(current: CallRecord | None) -> CallRecord:
    raise ValueError("a bug in a mutation")


async def events_of(store: MemoryCallStore, call_id: str = "c1") -> list[str]:
    record = await store.get(call_id)
    assert record is not None
    return [e.type for e in record.recent_events]


@pytest.fixture
def store() -> MemoryCallStore:
    return MemoryCallStore()


async def test_submitted_mutations_apply_in_order(store: MemoryCallStore) -> None:
    writer = StateWriter(store)
    for name in ("a", "b", "c"):
        writer.submit("c1", event(name))
    assert await writer.flush(5)
    assert await events_of(store) == ["a", "b", "c"]
    await writer.close()


async def test_a_newer_mutation_with_the_same_tag_replaces_the_pending_one(
    store: MemoryCallStore,
) -> None:
    writer = StateWriter(store)
    writer.submit("c1", event("connected"))
    writer.submit("c1", event("progress-1"), supersedes="progress")
    writer.submit("c1", event("progress-2"), supersedes="progress")
    writer.submit("c1", event("dtmf"))
    assert await writer.flush(5)
    assert await events_of(store) == ["connected", "progress-2", "dtmf"]
    await writer.close()


async def test_calls_are_written_independently(store: MemoryCallStore) -> None:
    writer = StateWriter(store)
    writer.submit("c1", event("one"))
    writer.submit("c2", lambda _: CallRecord(call_connection_id="c2").with_event("two"))
    assert await writer.flush(5)
    assert await events_of(store, "c1") == ["one"]
    assert await events_of(store, "c2") == ["two"]
    await writer.close()


async def test_the_oldest_pending_mutation_goes_when_a_call_exceeds_its_bound(
    store: MemoryCallStore,
) -> None:
    writer = StateWriter(store, max_pending_per_call=3)
    for name in ("a", "b", "c", "d", "e"):
        writer.submit("c1", event(name))
    assert await writer.flush(5)
    assert await events_of(store) == ["c", "d", "e"]
    await writer.close()


async def test_a_mutation_that_raises_is_dropped_and_later_ones_apply(
    store: MemoryCallStore,
) -> None:
    writer = StateWriter(store)
    writer.submit("c1", broken)
    assert await writer.flush(5)
    writer.submit("c1", event("after"))
    assert await writer.flush(5)
    assert await events_of(store) == ["after"]
    await writer.close()


async def test_close_lets_pending_writes_land(store: MemoryCallStore) -> None:
    writer = StateWriter(store)
    writer.submit("c1", event("last"))
    await writer.close()
    assert await events_of(store) == ["last"]


async def test_submit_after_close_is_dropped_without_raising(store: MemoryCallStore) -> None:
    writer = StateWriter(store)
    await writer.close()
    writer.submit("c1", event("late"))
    assert writer.pending == 0
    assert await store.get("c1") is None


async def test_writes_of_two_writers_on_redis_all_land(open_store: StoreFactory) -> None:
    a, b = StateWriter(await open_store()), StateWriter(await open_store())
    for i in range(20):
        (a if i % 2 else b).submit("c1", event(f"e{i}"))
    assert await a.flush(10)
    assert await b.flush(10)
    reader = await open_store()
    record = await reader.get("c1")
    assert record is not None
    assert sorted(e.type for e in record.recent_events) == sorted(f"e{i}" for i in range(20))
    await a.close()
    await b.close()
