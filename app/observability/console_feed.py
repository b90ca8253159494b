"""In-process pub/sub of call updates for the operator console (Server-Sent Events).

Messages are JSON objects with a `type`:

    {"type": "snapshot", "calls": [<CallRecord>, ...]}   first message of every stream
    {"type": "call", "call": <CallRecord>}               a call's record changed
    {"type": "level", "call_connection_id": "...", "rms": 0.0-1.0}   caller audio level, ~5/s
    {"type": "removed", "call_connection_id": "..."}    the call is gone from the store
    {"type": "round_trip", "call_connection_id": "...", "ms": 42.0}   softphone calls, ~1/s

A message is encoded once per publish, however many consoles listen. Each subscriber has a
bounded queue that drops its oldest message when the client reads too slowly; the stream then
sends a fresh snapshot so no state is lost for good. Publishing never blocks or awaits.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType

from app.calls.models import CallRecord

DEFAULT_QUEUE_LIMIT = 1000  # 200 calls' levels for a second, with room for record updates


@dataclass(frozen=True, slots=True)
class CallUpdated:
    record: CallRecord

    def encode(self) -> str:
        return '{"type":"call","call":' + self.record.model_dump_json() + "}"


@dataclass(frozen=True, slots=True)
class AudioLevel:
    call_connection_id: str
    rms: float  # 0.0 (silence) to 1.0 (full scale)

    def encode(self) -> str:
        rms = round(min(max(self.rms, 0.0), 1.0), 4)
        return json.dumps(
            {"type": "level", "call_connection_id": self.call_connection_id, "rms": rms}
        )


@dataclass(frozen=True, slots=True)
class CallRemoved:
    call_connection_id: str

    def encode(self) -> str:
        return json.dumps({"type": "removed", "call_connection_id": self.call_connection_id})


@dataclass(frozen=True, slots=True)
class RoundTripMeasured:
    """How long the call's audio took to come back (the console softphone measures it)."""

    call_connection_id: str
    ms: float

    def encode(self) -> str:
        return json.dumps(
            {
                "type": "round_trip",
                "call_connection_id": self.call_connection_id,
                "ms": round(self.ms, 1),
            }
        )


HubEvent = CallUpdated | AudioLevel | CallRemoved | RoundTripMeasured


def snapshot_message(records: Iterable[CallRecord]) -> str:
    """The `snapshot` message listing every call."""
    calls = ",".join(record.model_dump_json() for record in records)
    return '{"type":"snapshot","calls":[' + calls + "]}"


class SubscriptionClosed(Exception):
    """The hub closed (the app is shutting down) and every pending message was read."""


class EventHub:
    """Fan-out of console messages to every subscriber of this app instance."""

    def __init__(self, queue_limit: int = DEFAULT_QUEUE_LIMIT) -> None:
        if queue_limit < 1:
            raise ValueError("queue_limit must be at least 1")
        self._queue_limit = queue_limit
        self._subscribers: set[Subscription] = set()
        self._closed = False

    @property
    def subscribers(self) -> int:
        return len(self._subscribers)

    def subscribe(self) -> Subscription:
        """A new subscription; use it as a context manager so it is always removed."""
        subscription = Subscription(self, self._queue_limit)
        if self._closed:
            subscription.close()
        else:
            self._subscribers.add(subscription)
        return subscription

    def publish(self, item: CallRecord | HubEvent) -> None:
        """Queue `item` for every subscriber; a record becomes a `call` message."""
        if not self._subscribers:
            return  # nobody watching: not even the encoding is paid
        event = CallUpdated(item) if isinstance(item, CallRecord) else item
        encoded = event.encode()
        for subscription in self._subscribers:
            subscription.offer(encoded)

    def publish_level(self, call_connection_id: str, rms: float) -> None:
        """Shorthand for a `level` message."""
        if self._subscribers:
            self.publish(AudioLevel(call_connection_id, rms))

    def close(self) -> None:
        """End every subscription (after its pending messages); later ones start closed."""
        self._closed = True
        for subscription in list(self._subscribers):
            subscription.close()

    def _discard(self, subscription: Subscription) -> None:
        self._subscribers.discard(subscription)


class Subscription:
    """One listener's bounded queue of encoded messages; iterate it, or `await get()`."""

    def __init__(self, hub: EventHub, limit: int) -> None:
        self._hub = hub
        self._queue: deque[str] = deque(maxlen=limit)
        self._ready = asyncio.Event()
        self._closed = False
        self._dropped_unseen = 0
        self.dropped = 0

    def offer(self, message: str) -> None:
        """Queue one message, dropping the oldest when full (never blocks)."""
        if self._closed:
            return
        if len(self._queue) == self._queue.maxlen:
            self.dropped += 1
            self._dropped_unseen += 1
        self._queue.append(message)
        self._ready.set()

    async def get(self, max_wait_s: float | None = None) -> list[str]:
        """Every pending message, waiting up to `max_wait_s` for one ([] when none came).

        Raises `SubscriptionClosed` once closed and drained.
        """
        if not self._queue:
            if self._closed:
                raise SubscriptionClosed
            self._ready.clear()
            try:
                async with asyncio.timeout(max_wait_s):
                    await self._ready.wait()
            except TimeoutError:
                return []
            if not self._queue:
                raise SubscriptionClosed
        batch = list(self._queue)
        self._queue.clear()
        return batch

    def take_dropped(self) -> int:
        """How many messages were dropped since the last call (0: nothing was lost)."""
        dropped, self._dropped_unseen = self._dropped_unseen, 0
        return dropped

    def close(self) -> None:
        """Stop receiving; pending messages can still be read."""
        self._closed = True
        self._hub._discard(self)
        self._ready.set()

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> str:
        if not self._queue:
            try:
                self._queue.extend(await self.get())
            except SubscriptionClosed:
                raise StopAsyncIteration from None
        return self._queue.popleft()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
