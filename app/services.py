"""The composition root: what the lifespan builds for one app instance, and tears down."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from app.agent.tools import ToolConfig
from app.backends.catalog import BackendFactory, open_backend_factory
from app.calls.acs_client import open_acs_client
from app.calls.call_bus import CallBus
from app.calls.control import CallControl
from app.calls.intake import CallIntake
from app.calls.operations import CallOperations
from app.calls.store import CallStore
from app.calls.store_factory import open_call_storage
from app.calls.write_behind import StateWriter
from app.media.failover import FailoverPolicy
from app.media.live_sessions import MediaSessions
from app.observability.console_feed import EventHub
from app.observability.metrics import Metrics
from app.observability.observed_store import ObservedCallStore
from app.security.service import Security, build_security
from app.settings import Settings
from app.shutdown import ShutdownSignal

if TYPE_CHECKING:  # the emulator is imported only when it runs
    from app.emulator import AcsEmulator


@dataclass
class Services:
    """Per-app dependencies, reachable from routes through `app.api.deps`."""

    settings: Settings
    store: CallStore
    writer: StateWriter  # call-state writes that must never wait or fail (the media path)
    bus: CallBus  # commands to the instance holding a call's media socket
    control: CallControl
    intake: CallIntake  # the Event Grid webhook and ACS callbacks
    operations: CallOperations  # the control API
    media: MediaSessions
    backend_factory: BackendFactory
    failover: FailoverPolicy  # what a call with no working backend gets (BACKEND_FAILOVER)
    security: Security
    metrics: Metrics  # this app's Prometheus registry (GET /metrics)
    events: EventHub  # live call updates for the operator console (GET /api/events)
    emulator: AcsEmulator | None  # the ACS emulator when it is this app's ACS (test calls)
    stopping: ShutdownSignal  # `requested` once a stop signal arrived (the app drains)


async def build_services(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    emulator: AcsEmulator | None = None,
    tools: ToolConfig | None = None,
    stopping: ShutdownSignal | None = None,
) -> Services:
    """Open every dependency the app needs; `stack` closes them in reverse order.

    `emulator` is the ACS emulator the settings point at, when it is this app's ACS."""
    security = await build_security(settings, stack)
    # REDIS_URL set: Redis store and bus; unset: in memory. Closed after the media sessions.
    metrics = Metrics()
    events = EventHub()
    storage = await open_call_storage(
        settings, stack, observe=lambda inner: ObservedCallStore(inner, events, metrics)
    )
    store = storage.store
    control = CallControl(await open_acs_client(settings, stack), settings)
    # Opened before the sessions' cleanup is registered, so shared backend resources (an Entra
    # credential) close after the last session.
    backend_factory = await open_backend_factory(
        settings.media_backend, settings, stack, tools=tools
    )
    media = MediaSessions(settings.max_concurrent_calls)
    # Sessions end before the store closes (the stack unwinds in reverse).
    stack.push_async_callback(media.close)
    stack.callback(events.close)  # first at shutdown: console streams end
    return Services(
        settings=settings,
        store=store,
        writer=storage.writer,
        bus=storage.bus,
        control=control,
        intake=CallIntake(store, control, storage.bus),
        operations=CallOperations(store, control, storage.bus),
        media=media,
        backend_factory=backend_factory,
        failover=FailoverPolicy.from_settings(settings),
        security=security,
        metrics=metrics,
        events=events,
        emulator=emulator,
        stopping=stopping or ShutdownSignal(),
    )
