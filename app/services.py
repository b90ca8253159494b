"""The composition root: what the lifespan builds for one app instance, and tears down."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

from app.backends.registry import BackendFactory, backend_factory
from app.calls.acs_client import open_acs_client
from app.calls.control import CallControl
from app.calls.intake import CallIntake
from app.calls.memory_store import MemoryCallStore
from app.calls.store import CallStore
from app.media.registry import MediaSessions
from app.security.service import Security, build_security
from app.settings import Settings


@dataclass
class Services:
    """Per-app dependencies, reachable from routes through `app.api.deps`."""

    settings: Settings
    store: CallStore
    control: CallControl
    intake: CallIntake
    media: MediaSessions
    backend_factory: BackendFactory
    security: Security


async def build_services(settings: Settings, stack: AsyncExitStack) -> Services:
    """Open every dependency the app needs; `stack` closes them in reverse order."""
    security = await build_security(settings, stack)
    store: CallStore = MemoryCallStore(ended_ttl_s=settings.call_state_ttl_s)
    stack.push_async_callback(store.close)
    control = CallControl(await open_acs_client(settings, stack), settings)
    media = MediaSessions(settings.max_concurrent_calls)
    # Sessions end before the store closes (the stack unwinds in reverse).
    stack.push_async_callback(media.close)
    return Services(
        settings=settings,
        store=store,
        control=control,
        intake=CallIntake(store, control),
        media=media,
        backend_factory=backend_factory(settings.media_backend),
        security=security,
    )
