"""The composition root: what the lifespan builds for one app instance, and tears down."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from app.calls.acs_client import open_acs_client
from app.calls.control import CallControl
from app.calls.intake import CallIntake
from app.calls.memory_store import MemoryCallStore
from app.calls.store import CallStore
from app.settings import Settings


@dataclass
class Services:
    """Per-app dependencies, reachable from routes through `app.api.deps`."""

    settings: Settings
    store: CallStore
    control: CallControl
    intake: CallIntake


async def build_services(settings: Settings, stack: AsyncExitStack) -> Services:
    """Open every dependency the app needs; `stack` closes them in reverse order."""
    store: CallStore = MemoryCallStore(ended_ttl_s=settings.call_state_ttl_s)
    stack.push_async_callback(store.close)
    control = CallControl(await open_acs_client(settings, stack), settings)
    return Services(
        settings=settings, store=store, control=control, intake=CallIntake(store, control)
    )
