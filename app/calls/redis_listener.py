"""One Redis pub/sub connection that stays subscribed to a changing set of channels.

A single task reads the connection and hands each message on. When Redis goes away the task
reports the loss, backs off, reconnects and subscribes again to every channel still wanted,
so a channel added during an outage is listened to once Redis returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from app.calls.backoff import Backoff
from app.calls.redis_client import REDIS_ERRORS

log = logging.getLogger(__name__)

SUBSCRIBE_TIMEOUT_S = 2.0
READ_TIMEOUT_S = 5.0


class ChannelListener:
    """Keeps `channels` subscribed across reconnects; does not own the Redis client."""

    def __init__(
        self,
        redis: Redis,
        on_message: Callable[[str, str], None],
        on_lost: Callable[[], None],
        backoff: Backoff,
    ) -> None:
        self._redis = redis
        self._on_message = on_message
        self._on_lost = on_lost
        self._backoff = backoff
        self._channels: set[str] = set()
        self._confirmed: dict[str, asyncio.Event] = {}
        self._pubsub: PubSub | None = None
        # Subscribing from `add` and from a reconnect must not interleave on the connection.
        self._lock = asyncio.Lock()
        self._first_attempt = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def start(self, channels: list[str]) -> None:
        """Start reading; waits for the first connection attempt, but never fails on it."""
        self._channels.update(channels)
        if self._reader is None:
            self._reader = asyncio.create_task(self._read())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await self._first_attempt.wait()

    def is_subscribed(self, channel: str) -> bool:
        """True while Redis confirms the subscription on the live connection."""
        event = self._confirmed.get(channel)
        return event is not None and event.is_set()

    async def add(self, channel: str) -> None:
        """Subscribe; waits briefly for Redis to confirm, so a publish right after finds us."""
        self._channels.add(channel)
        event = self._confirmed.setdefault(channel, asyncio.Event())
        async with self._lock:
            if self._pubsub is None:
                return  # the reader subscribes it on reconnecting
            try:
                await self._pubsub.subscribe(channel)
            except REDIS_ERRORS as exc:
                log.warning("cannot subscribe %s yet (%s)", channel, exc)
                return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SUBSCRIBE_TIMEOUT_S):
                await event.wait()

    async def remove(self, channel: str) -> None:
        """Unsubscribe (best effort: a lost connection has no subscriptions anyway)."""
        self._channels.discard(channel)
        self._confirmed.pop(channel, None)
        async with self._lock:
            if self._pubsub is not None:
                with contextlib.suppress(*REDIS_ERRORS):
                    await self._pubsub.unsubscribe(channel)

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
            self._reader = None

    async def _read(self) -> None:
        delays = self._backoff.delays()
        while True:
            pubsub = self._redis.pubsub()
            try:
                async with self._lock:
                    # Set before subscribing: an `add` after this point subscribes itself.
                    self._pubsub = pubsub
                    await pubsub.subscribe(*self._channels)
                while True:
                    message = await pubsub.get_message(timeout=READ_TIMEOUT_S)
                    if message is not None:
                        delays = self._backoff.delays()
                        self._dispatch(message)
            except REDIS_ERRORS as exc:
                log.warning("lost the Redis subscription (%s); reconnecting", exc)
            finally:
                self._lost()
                with contextlib.suppress(*REDIS_ERRORS):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]  # untyped in redis-py
            await asyncio.sleep(next(delays))

    def _dispatch(self, message: dict[str, object]) -> None:
        kind, channel, data = message.get("type"), message.get("channel"), message.get("data")
        if not isinstance(channel, str):
            return
        if kind == "subscribe":
            self._confirmed.setdefault(channel, asyncio.Event()).set()
            self._first_attempt.set()
        elif kind == "message" and isinstance(data, str):
            self._on_message(channel, data)

    def _lost(self) -> None:
        self._first_attempt.set()
        self._pubsub = None
        for event in self._confirmed.values():
            event.clear()
        self._on_lost()
