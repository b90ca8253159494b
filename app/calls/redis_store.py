"""Call records in Redis, shared by every instance of the bridge.

Keys (all under `key_prefix`):
    call:{id}      the record as JSON; TTL `live_ttl_s` while the call lives (refreshed on every
                   write, so only abandoned records expire), `ended_ttl_s` once disconnected
    calls          sorted set of call ids scored by creation time, for `list()`
    claim:{key}    one-shot claims (`SET NX PX`), holding this store's token

`update` is an optimistic compare-and-set (WATCH/MULTI/EXEC) retried on conflict. Updates of
one call from this process queue on a local lock first, so only instances race each other.
One Redis (or a primary with replicas, as Azure Cache for Redis runs it); not Redis Cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
import weakref
from collections.abc import AsyncIterator

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import WatchError

from app.calls.backoff import Backoff
from app.calls.models import CallRecord, ConnectionState
from app.calls.redis_client import REDIS_ERRORS, address, unreachable_reason
from app.calls.store import Mutation, StoreUnavailable

log = logging.getLogger(__name__)

MAX_CAS_ATTEMPTS = 50
CAS_BACKOFF = Backoff(initial_s=0.002, max_s=0.1)
PING_TIMEOUT_S = 2.0
LIST_CHUNK = 500
MAX_PENDING_RELEASES = 1000
RELEASE_BACKOFF = Backoff()

# Delete the claim only while it still holds our token: it may have expired and been re-won.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end"
# Drop index entries whose record expired, unless the call was re-created meanwhile.
_PRUNE = """
for i, id in ipairs(ARGV) do
  if redis.call('EXISTS', KEYS[1] .. id) == 0 then redis.call('ZREM', KEYS[2], id) end
end"""


class RedisCallStore:
    """`CallStore` on Redis; raises `StoreUnavailable` (`store unreachable: host:port: reason`)
    when Redis cannot be reached."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str,
        ended_ttl_s: int,
        live_ttl_s: int,
        release_backoff: Backoff = RELEASE_BACKOFF,
    ) -> None:
        if not 0 < ended_ttl_s <= live_ttl_s:
            raise ValueError("TTLs must satisfy 0 < ended_ttl_s <= live_ttl_s")
        self._redis = redis
        self._address = address(redis)
        self._prefix = key_prefix
        self._index = f"{key_prefix}calls"
        self._ended_ttl_s = ended_ttl_s
        self._live_ttl_s = live_ttl_s
        self._token = uuid.uuid4().hex
        self._release_backoff = release_backoff
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        self._releases: set[asyncio.Task[None]] = set()
        self._release_script = redis.register_script(_RELEASE)
        self._prune_script = redis.register_script(_PRUNE)

    async def get(self, call_connection_id: str) -> CallRecord | None:
        async with self._unavailable():
            raw = await self._redis.get(self._key(call_connection_id))
        return self._decode(call_connection_id, raw)

    async def list(self) -> list[CallRecord]:
        async with self._unavailable():
            ids = [_text(i) for i in await self._redis.zrevrange(self._index, 0, -1)]
            records: list[CallRecord] = []
            gone: list[str] = []
            for start in range(0, len(ids), LIST_CHUNK):
                chunk = ids[start : start + LIST_CHUNK]
                raws = await self._redis.mget([self._key(i) for i in chunk])
                for call_id, raw in zip(chunk, raws, strict=True):
                    record = self._decode(call_id, raw)
                    if record is None:
                        gone.append(call_id)
                    else:
                        records.append(record)
            if gone:
                await self._prune_script(keys=[self._key(""), self._index], args=gone)
        return records

    async def update(self, call_connection_id: str, mutate: Mutation) -> CallRecord | None:
        lock = self._locks.setdefault(call_connection_id, asyncio.Lock())
        async with lock, self._unavailable():
            delays = CAS_BACKOFF.delays()
            for _ in range(MAX_CAS_ATTEMPTS):
                try:
                    return await self._compare_and_set(call_connection_id, mutate)
                except WatchError:
                    await asyncio.sleep(next(delays))
        raise StoreUnavailable(
            f"call {call_connection_id}: {MAX_CAS_ATTEMPTS} concurrent updates in a row won"
        )

    async def claim(self, key: str, ttl_s: float) -> bool:
        ttl_ms = max(1, round(ttl_s * 1000))
        async with self._unavailable():
            won = await self._redis.set(self._claim_key(key), self._token, nx=True, px=ttl_ms)
        return bool(won)

    async def release(self, key: str) -> None:
        """Give a claim back; while Redis is away the release is retried in the background."""
        try:
            await self._release_script(keys=[self._claim_key(key)], args=[self._token])
        except REDIS_ERRORS as exc:
            if len(self._releases) >= MAX_PENDING_RELEASES:
                log.warning("could not release claim %s (%s); it will expire", key, exc)
                return
            task = asyncio.create_task(self._release_later(key))
            self._releases.add(task)
            task.add_done_callback(self._releases.discard)

    async def ping(self) -> bool:
        async with self._unavailable(), asyncio.timeout(PING_TIMEOUT_S):
            return bool(await self._redis.ping())

    async def close(self) -> None:
        for task in self._releases:
            task.cancel()
        await asyncio.gather(*self._releases, return_exceptions=True)
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.aclose()

    async def _compare_and_set(self, call_id: str, mutate: Mutation) -> CallRecord | None:
        key = self._key(call_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            await pipe.watch(key)
            current = self._decode(call_id, await pipe.get(key))
            new = mutate(current)
            if new is None:
                return current
            ended = new.connection_state is ConnectionState.DISCONNECTED
            ttl_s = self._ended_ttl_s if ended else self._live_ttl_s
            pipe.multi()  # type: ignore[no-untyped-call]  # untyped in redis-py
            pipe.set(key, new.model_dump_json(), ex=ttl_s)
            pipe.zadd(self._index, {call_id: new.created_at.timestamp()})
            pipe.expire(self._index, self._live_ttl_s)
            await pipe.execute()
            return new

    async def _release_later(self, key: str) -> None:
        for delay in self._release_backoff.delays():
            await asyncio.sleep(delay)
            try:
                await self._release_script(keys=[self._claim_key(key)], args=[self._token])
            except REDIS_ERRORS:
                continue
            log.info("released claim %s after Redis returned", key)
            return

    @contextlib.asynccontextmanager
    async def _unavailable(self) -> AsyncIterator[None]:
        try:
            yield
        except REDIS_ERRORS as exc:
            # Said as the operator needs it (readiness, a refused test call): which Redis, why.
            message = f"store unreachable: {self._address}: {unreachable_reason(exc)}"
            raise StoreUnavailable(message) from exc

    def _decode(self, call_id: str, raw: str | bytes | None) -> CallRecord | None:
        if raw is None:
            return None
        try:
            return CallRecord.model_validate_json(raw)
        except ValidationError as exc:
            # An unreadable record (another version's schema) is treated as absent, not fatal.
            log.warning("ignoring unreadable record of call %s: %s", call_id, exc)
            return None

    def _key(self, call_id: str) -> str:
        return f"{self._prefix}call:{call_id}"

    def _claim_key(self, key: str) -> str:
        return f"{self._prefix}claim:{key}"


def _text(value: object) -> str:
    # The client decodes responses, but redis-py types members as bytes | str.
    return value.decode() if isinstance(value, bytes) else str(value)
