"""In-process call store: one instance per app, for a single-instance deployment and tests."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable

from app.calls.models import CallRecord, ConnectionState
from app.calls.store import Mutation


class MemoryCallStore:
    """Call records in a dict, updates serialised by one lock.

    Like the Redis store, a record expires `ended_ttl_s` after its call ended, or `live_ttl_s`
    after its last write when the call never ended (a lost CallDisconnected, a media socket for
    a call this instance never answered); beyond `max_calls`, ended calls go first, oldest
    first, then the records written longest ago. Memory stays bounded whatever ACS sends.
    """

    def __init__(
        self,
        ended_ttl_s: float = 24 * 3600.0,
        max_calls: int = 10_000,
        *,
        live_ttl_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._records: dict[str, CallRecord] = {}
        # Both in expiry order: ended calls by when they ended, live ones by their last write.
        self._ended_at: OrderedDict[str, float] = OrderedDict()
        self._written_at: OrderedDict[str, float] = OrderedDict()
        self._claims: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._ended_ttl_s = ended_ttl_s
        self._live_ttl_s = live_ttl_s if live_ttl_s is not None else 2 * ended_ttl_s
        self._max_calls = max_calls
        # Claims: an IncomingCall's two and one per callback event, for about ten per call.
        self._max_claims = max_calls * 16
        self._clock = clock

    async def get(self, call_connection_id: str) -> CallRecord | None:
        self._expire()
        return self._records.get(call_connection_id)

    async def list(self) -> list[CallRecord]:
        self._expire()
        return sorted(self._records.values(), key=lambda r: r.created_at, reverse=True)

    async def update(self, call_connection_id: str, mutate: Mutation) -> CallRecord | None:
        async with self._lock:
            current = self._records.get(call_connection_id)
            new = mutate(current)
            if new is None:
                return current
            self._records[call_connection_id] = new
            now = self._clock()
            if call_connection_id in self._ended_at:
                pass  # stays visible for the TTL from when it ended, late events or not
            elif new.connection_state is ConnectionState.DISCONNECTED:
                self._written_at.pop(call_connection_id, None)
                self._ended_at[call_connection_id] = now
            else:
                self._written_at[call_connection_id] = now
                self._written_at.move_to_end(call_connection_id)
            self._expire()
            return new

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        expires = self._claims.pop(key, None)
        if expires is not None and expires > now:
            self._claims[key] = expires
            return False
        self._claims[key] = now + ttl_s  # last: the dict keeps the claims in claiming order
        if len(self._claims) > self._max_claims:
            self._trim_claims(now)
        return True

    async def release(self, key: str) -> None:
        self._claims.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._records.clear()
        self._ended_at.clear()
        self._written_at.clear()
        self._claims.clear()

    def _trim_claims(self, now: float) -> None:
        # Expired claims first; then, when claims (one per callback event) outrun the bound
        # anyway, the oldest: a retry that late is rare, and memory stays bounded. Down to
        # three quarters, so the scan runs once per many claims, not on each.
        live = {k: v for k, v in self._claims.items() if v > now}
        keep = self._max_claims * 3 // 4
        self._claims = dict(list(live.items())[len(live) - keep :]) if len(live) > keep else live

    def _expire(self) -> None:
        now = self._clock()
        _drop_older(self._ended_at, now - self._ended_ttl_s, self._records)
        _drop_older(self._written_at, now - self._live_ttl_s, self._records)
        while len(self._records) > self._max_calls:
            oldest = self._ended_at if self._ended_at else self._written_at
            if not oldest:
                break
            call_id, _ = oldest.popitem(last=False)
            self._records.pop(call_id, None)


def _drop_older(
    order: OrderedDict[str, float], cutoff: float, records: dict[str, CallRecord]
) -> None:
    while order:
        call_id, at = next(iter(order.items()))
        if at > cutoff:
            return
        del order[call_id]
        records.pop(call_id, None)
