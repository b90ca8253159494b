"""RedisCallStore against the real Redis on 127.0.0.1:6379: records, index, TTLs, claims."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from redis.asyncio import Redis

from app.calls.models import (
    CallRecord,
    ConnectionState,
    MediaConnection,
    TranscriptEntry,
    utcnow,
)
from app.calls.store import Mutation
from tests.calls.redis.conftest import ENDED_TTL_S, LIVE_TTL_S, StoreFactory, eventually


def create(call_id: str, **fields: object) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord:
        return CallRecord.model_validate({"call_connection_id": call_id, **fields})

    return mutate


def set_state(state: ConnectionState) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord | None:
        return None if current is None else current.model_copy(update={"connection_state": state})

    return mutate


def increment(current: CallRecord | None) -> CallRecord | None:
    if current is None:
        return None
    metrics = {**current.metrics, "n": current.metrics.get("n", 0) + 1}
    return current.model_copy(update={"metrics": metrics})


async def test_update_creates_a_record_that_get_returns(open_store: StoreFactory) -> None:
    store = await open_store()
    stored = await store.update("c1", create("c1", caller="+1555"))
    assert stored is not None
    assert await store.get("c1") == stored


async def test_records_round_trip_with_every_nested_field(open_store: StoreFactory) -> None:
    store = await open_store()
    now = utcnow()
    record = CallRecord(
        call_connection_id="c1",
        caller="+1555",
        media=MediaConnection(connected=True, instance_id="a", connected_at=now, frames_in=7),
        transcript=[TranscriptEntry(role="caller", text="hello", time=now)],
        metrics={"latency_ms": [1.5, 2.0], "backend": "echo"},
    ).with_event("CallConnected", detail="x")
    await store.update("c1", lambda _: record)
    assert await store.get("c1") == record


async def test_get_of_an_unknown_call_is_none(open_store: StoreFactory) -> None:
    store = await open_store()
    assert await store.get("nope") is None


async def test_update_returning_none_keeps_the_record(open_store: StoreFactory) -> None:
    store = await open_store()
    stored = await store.update("c1", create("c1"))
    assert await store.update("c1", lambda _: None) == stored
    assert await store.update("absent", lambda _: None) is None
    assert await store.get("absent") is None


async def test_list_returns_calls_newest_first(open_store: StoreFactory) -> None:
    store = await open_store()
    start = utcnow()
    for i in (2, 0, 1):
        await store.update(f"c{i}", create(f"c{i}", created_at=start + timedelta(seconds=i)))
    assert [r.call_connection_id for r in await store.list()] == ["c2", "c1", "c0"]


async def test_list_shows_calls_written_by_another_instance(open_store: StoreFactory) -> None:
    a, b = await open_store(), await open_store()
    await a.update("from-a", create("from-a"))
    await b.update("from-b", create("from-b"))
    assert {r.call_connection_id for r in await a.list()} == {"from-a", "from-b"}


async def test_list_forgets_expired_records(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    store = await open_store()
    await store.update("c1", create("c1"))
    await store.update("c2", create("c2"))
    await raw_redis.delete(f"{redis_prefix}call:c1")  # as if its TTL ran out
    assert [r.call_connection_id for r in await store.list()] == ["c2"]
    assert await raw_redis.zrange(f"{redis_prefix}calls", 0, -1) == ["c2"]


async def test_live_call_keeps_the_long_safety_ttl(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    store = await open_store()
    await store.update("c1", create("c1"))
    await store.update("c1", set_state(ConnectionState.CONNECTED))
    assert ENDED_TTL_S < await raw_redis.ttl(f"{redis_prefix}call:c1") <= LIVE_TTL_S


async def test_disconnected_call_gets_the_ended_ttl(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    store = await open_store()
    await store.update("c1", create("c1"))
    await store.update("c1", set_state(ConnectionState.DISCONNECTED))
    assert 0 < await raw_redis.ttl(f"{redis_prefix}call:c1") <= ENDED_TTL_S


async def test_disconnected_call_disappears_after_its_ttl(open_store: StoreFactory) -> None:
    store = await open_store(ended_ttl_s=1)
    await store.update("c1", create("c1", connection_state="disconnected"))

    async def gone() -> bool:
        return await store.get("c1") is None and await store.list() == []

    await eventually(gone)


async def test_concurrent_updates_from_two_instances_lose_nothing(
    open_store: StoreFactory,
) -> None:
    a, b = await open_store(), await open_store()
    await a.update("c1", create("c1"))
    await asyncio.gather(*(store.update("c1", increment) for store in [a, b] * 100))
    record = await b.get("c1")
    assert record is not None
    assert record.metrics["n"] == 200


async def test_claim_is_won_exactly_once_across_instances(open_store: StoreFactory) -> None:
    a, b = await open_store(), await open_store()
    results = await asyncio.gather(*(store.claim("incoming:1", 60) for store in [a, b] * 10))
    assert results.count(True) == 1


async def test_release_lets_the_key_be_claimed_again(open_store: StoreFactory) -> None:
    a, b = await open_store(), await open_store()
    assert await a.claim("k", 60)
    assert not await b.claim("k", 60)
    await a.release("k")
    assert await b.claim("k", 60)


async def test_release_by_an_instance_that_does_not_hold_the_claim_keeps_it(
    open_store: StoreFactory,
) -> None:
    a, b = await open_store(), await open_store()
    assert await a.claim("k", 60)
    await b.release("k")
    assert not await b.claim("k", 60)


async def test_claim_can_be_won_again_once_it_expires(open_store: StoreFactory) -> None:
    a, b = await open_store(), await open_store()
    assert await a.claim("k", 0.05)

    async def reclaimed() -> bool:
        return await b.claim("k", 60)

    await eventually(reclaimed)


async def test_ping_is_true_while_redis_answers(open_store: StoreFactory) -> None:
    store = await open_store()
    assert await store.ping()
