"""The write-behind notices a store that lost its data, so media owners rewrite their records."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis

from app.calls.models import CallRecord
from app.calls.store import Mutation
from app.calls.write_behind import StateWriter
from tests.calls.redis.conftest import RedisServer, StoreFactory, eventually

PROBE_S = 0.02


def progress(n: int) -> Mutation:
    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or CallRecord(call_connection_id="c1")
        return record.model_copy(update={"metrics": {"progress": n}})

    return mutate


def resets_reach(writer: StateWriter, count: int) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return writer.resets == count

    return check


async def test_the_keeper_is_told_the_stored_record(open_store: StoreFactory) -> None:
    writer = StateWriter(await open_store(), probe_interval_s=PROBE_S)
    kept: list[CallRecord] = []
    writer.submit("c1", progress(1), on_stored=kept.append)
    writer.submit("c1", progress(2), supersedes="progress")
    assert await writer.flush(5)
    assert [r.metrics for r in kept] == [{"progress": 2}]
    await writer.close()


async def test_a_watched_record_that_vanishes_counts_one_reset(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    writer = StateWriter(await open_store(), probe_interval_s=PROBE_S)
    writer.submit("c1", progress(1), on_stored=lambda _: None)
    assert await writer.flush(5)
    await raw_redis.delete(f"{redis_prefix}call:c1")

    await eventually(resets_reach(writer, 1), timeout_s=5)
    # Unwatched until the owner's rewrite lands: the loss is counted once.
    assert writer.resets == 1
    writer.submit("c1", progress(2), on_stored=lambda _: None)
    assert await writer.flush(5)
    await raw_redis.delete(f"{redis_prefix}call:c1")
    await eventually(resets_reach(writer, 2), timeout_s=5)
    await writer.close()


async def test_a_call_its_owner_stopped_keeping_is_not_probed(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    writer = StateWriter(await open_store(), probe_interval_s=PROBE_S)
    writer.submit("c1", progress(1), on_stored=lambda _: None)
    assert await writer.flush(5)
    writer.submit("c1", progress(2))  # the last write of a media session keeps nothing
    assert await writer.flush(5)
    await raw_redis.delete(f"{redis_prefix}call:c1")
    await asyncio.sleep(PROBE_S * 10)
    assert writer.resets == 0
    await writer.close()


async def test_a_call_whose_keeper_stopped_writing_ages_out(
    open_store: StoreFactory, raw_redis: Redis, redis_prefix: str
) -> None:
    # A media session handed over to another instance writes nothing more here.
    writer = StateWriter(await open_store(), probe_interval_s=PROBE_S, watch_for_s=PROBE_S * 2)
    writer.submit("c1", progress(1), on_stored=lambda _: None)
    assert await writer.flush(5)
    await asyncio.sleep(PROBE_S * 10)
    await raw_redis.delete(f"{redis_prefix}call:c1")
    await asyncio.sleep(PROBE_S * 10)
    assert writer.resets == 0
    await writer.close()


async def test_redis_restarting_empty_is_noticed(
    open_store: StoreFactory, redis_server: RedisServer
) -> None:
    writer = StateWriter(await open_store(redis_server.url), probe_interval_s=PROBE_S)
    writer.submit("c1", progress(1), on_stored=lambda _: None)
    assert await writer.flush(5)
    await redis_server.stop()
    await redis_server.start()
    await eventually(resets_reach(writer, 1), timeout_s=5)
    await writer.close()


async def test_redis_restarting_with_its_data_is_no_reset(
    open_store: StoreFactory, redis_server: RedisServer
) -> None:
    writer = StateWriter(await open_store(redis_server.url), probe_interval_s=PROBE_S)
    writer.submit("c1", progress(1), on_stored=lambda _: None)
    assert await writer.flush(5)
    await redis_server.stop(keep_data=True)
    await redis_server.start()
    await asyncio.sleep(PROBE_S * 20)
    assert writer.resets == 0
    await writer.close()
