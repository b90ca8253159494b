"""The composition root: what the lifespan builds for one app instance, and tears down."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from app.calls.memory_store import MemoryCallStore
from app.calls.store import CallStore
from app.settings import Settings


@dataclass
class Services:
    """Per-app dependencies, reachable from routes through `app.api.deps`."""

    settings: Settings
    store: CallStore


async def build_services(settings: Settings, stack: AsyncExitStack) -> Services:
    """Open every dependency the app needs; `stack` closes them in reverse order."""
    store: CallStore = MemoryCallStore(ended_ttl_s=settings.call_state_ttl_s)
    stack.push_async_callback(store.close)
    return Services(settings=settings, store=store)
