"""A `CallStore` decorator that makes every call change observable.

Each record change goes through `CallStore.update`, so wrapping the store is enough for the
console to see every change (a `call` message on the `EventHub`) and for the call metrics
(active calls, calls by outcome) to follow the call's lifecycle, without the control plane or the
media plane calling either. Counts are this instance's view: with a shared Redis store a call's
transitions are counted by whichever instance applied them.
"""

from __future__ import annotations

from collections.abc import Callable

from app.calls.models import CallRecord, ConnectionState, MediaState
from app.calls.store import CallStore, Mutation
from app.observability.console_feed import EventHub
from app.observability.metrics import Metrics


class ObservedCallStore:
    """Delegates to `inner`; publishes each changed record and counts call starts and ends."""

    def __init__(
        self,
        inner: CallStore,
        events: EventHub,
        metrics: Metrics,
        *,
        on_ended: Callable[[CallRecord], None] | None = None,
    ) -> None:
        """`on_ended` hears of each call that reached `disconnected` here (the webhook)."""
        self._inner = inner
        self._events = events
        self._metrics = metrics
        self._on_ended = on_ended

    async def get(self, call_connection_id: str) -> CallRecord | None:
        return await self._inner.get(call_connection_id)

    async def list(self) -> list[CallRecord]:
        return await self._inner.list()

    async def update(self, call_connection_id: str, mutate: Mutation) -> CallRecord | None:
        seen: list[tuple[CallRecord | None, CallRecord | None]] = []

        def observed(current: CallRecord | None) -> CallRecord | None:
            new = mutate(current)
            seen.append((current, new))
            return new

        stored = await self._inner.update(call_connection_id, observed)
        # A compare-and-set store may run the mutation more than once: the last run is the one.
        before, after = seen[-1] if seen else (None, None)
        if after is not None and stored is not None:
            self._count(before, stored)
            self._events.publish(stored)
        return stored

    async def claim(self, key: str, ttl_s: float) -> bool:
        return await self._inner.claim(key, ttl_s)

    async def release(self, key: str) -> None:
        await self._inner.release(key)

    async def ping(self) -> bool:
        return await self._inner.ping()

    async def close(self) -> None:
        await self._inner.close()

    def _count(self, before: CallRecord | None, after: CallRecord) -> None:
        ended = ConnectionState.DISCONNECTED
        was_live = before is not None and before.connection_state is not ended
        if before is None and after.connection_state is not ended:
            self._metrics.call_started()
        elif after.connection_state is ended and (before is None or was_live):
            self._metrics.call_ended(call_outcome(after), was_active=was_live)
            if self._on_ended is not None:
                self._on_ended(after)


def call_outcome(record: CallRecord) -> str:
    """How an ended call went: `completed`, `media_failed` (connected, streaming failed) or
    `failed` (never connected)."""
    if record.connected_at is None:
        return "failed"
    if record.media_state is MediaState.FAILED or record.media_failure is not None:
        return "media_failed"
    return "completed"
