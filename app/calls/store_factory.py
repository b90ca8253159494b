"""Where call state lives, chosen from settings: Redis when REDIS_URL is set, else memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass

from app.calls.call_bus import CallBus, MemoryCallBus
from app.calls.memory_store import MemoryCallStore
from app.calls.store import CallStore
from app.calls.write_behind import StateWriter
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class CallStorage:
    """The call store, its write-behind for the media path, and the per-call command bus."""

    store: CallStore
    writer: StateWriter
    bus: CallBus


def live_ttl_s(settings: Settings) -> int:
    """How long a record of a call that never ended survives its last write."""
    # Long enough for the longest call plus the time an ended one stays visible.
    return int(settings.max_call_duration_s) + settings.call_state_ttl_s


async def open_call_storage(
    settings: Settings,
    stack: AsyncExitStack,
    observe: Callable[[CallStore], CallStore] | None = None,
) -> CallStorage:
    """Open the store and the bus; `stack` flushes the writer, then closes the bus and store.

    `observe` wraps the store (e.g. to publish every change), for reads and writes alike.
    """
    url = settings.redis_url.get_secret_value() if settings.redis_url is not None else ""
    store: CallStore
    bus: CallBus
    if url:
        # Imported here so a memory-only deployment never loads the Redis client.
        from app.calls.redis_bus import RedisCallBus
        from app.calls.redis_client import describe, redis_client
        from app.calls.redis_store import RedisCallStore

        store = RedisCallStore(
            redis_client(url),
            key_prefix=settings.redis_key_prefix,
            ended_ttl_s=settings.call_state_ttl_s,
            live_ttl_s=live_ttl_s(settings),
        )
        stack.push_async_callback(store.close)
        redis_bus = RedisCallBus(
            redis_client(url),
            key_prefix=settings.redis_key_prefix,
            instance_id=settings.instance_id,
        )
        stack.push_async_callback(redis_bus.close)
        await redis_bus.start()
        bus = redis_bus
        log.info(
            "call state in Redis at %s (prefix %r), instance %s",
            describe(url),
            settings.redis_key_prefix,
            settings.instance_id,
        )
    else:
        store = MemoryCallStore(
            ended_ttl_s=settings.call_state_ttl_s, live_ttl_s=live_ttl_s(settings)
        )
        stack.push_async_callback(store.close)
        bus = MemoryCallBus(settings.instance_id)
        stack.push_async_callback(bus.close)
    if observe is not None:
        store = observe(store)
    writer = StateWriter(store)
    stack.push_async_callback(writer.close)
    return CallStorage(store=store, writer=writer, bus=bus)
