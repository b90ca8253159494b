"""In-process call store: one instance per app, for a single-instance deployment and tests."""

from __future__ import annotations

import asyncio
import time

from app.calls.models import CallRecord, ConnectionState
from app.calls.store import Mutation


class MemoryCallStore:
    """Call records in a dict, updates serialised by one lock; ended calls expire after a TTL."""

    def __init__(self, ended_ttl_s: float = 24 * 3600.0, max_calls: int = 10_000) -> None:
        self._records: dict[str, CallRecord] = {}
        self._ended_at: dict[str, float] = {}
        self._claims: dict[str, float] = {}
        self._lock = asyncio.Lock()
        self._ended_ttl_s = ended_ttl_s
        self._max_calls = max_calls

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
            if new.connection_state is ConnectionState.DISCONNECTED:
                self._ended_at.setdefault(call_connection_id, time.monotonic())
            self._expire()
            return new

    async def claim(self, key: str, ttl_s: float) -> bool:
        now = time.monotonic()
        expires = self._claims.get(key)
        if expires is not None and expires > now:
            return False
        self._claims[key] = now + ttl_s
        if len(self._claims) > self._max_calls * 4:
            self._claims = {k: v for k, v in self._claims.items() if v > now}
        return True

    async def release(self, key: str) -> None:
        self._claims.pop(key, None)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._records.clear()
        self._claims.clear()

    def _expire(self) -> None:
        # Ended calls stay visible for a while (operators look at them), then go.
        now = time.monotonic()
        stale = [cid for cid, t in self._ended_at.items() if now - t > self._ended_ttl_s]
        if len(self._records) > self._max_calls:
            oldest = sorted(self._ended_at.items(), key=lambda kv: kv[1])
            stale.extend(cid for cid, _ in oldest[: len(self._records) - self._max_calls])
        for cid in stale:
            self._records.pop(cid, None)
            self._ended_at.pop(cid, None)
