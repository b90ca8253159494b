"""The composition root: what the lifespan builds for one app instance, and tears down."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import httpx

from app.agents.directory import AgentDirectory
from app.agents.loading import load_agents
from app.agents.models import Agents
from app.backends.catalog import BackendFactory
from app.calls.acs_client import open_acs_client
from app.calls.call_bus import CallBus
from app.calls.control import CallControl
from app.calls.intake import CallIntake
from app.calls.operations import CallOperations
from app.calls.store import CallStore
from app.calls.store_factory import open_call_storage
from app.calls.write_behind import StateWriter
from app.media.live_sessions import MediaSessions
from app.observability.console_feed import EventHub
from app.observability.metrics import Metrics
from app.observability.observed_store import ObservedCallStore
from app.security.service import Security, build_security
from app.settings import Settings
from app.shutdown import ShutdownSignal
from app.webhooks.call_end import CallEndWebhook

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
    agents: AgentDirectory  # the lines: agents and routes (AGENTS_FILE), reloadable
    # A backend for a call of the agent with these settings (replaced by tests).
    backend_factory: BackendFactory
    security: Security
    metrics: Metrics  # this app's Prometheus registry (GET /metrics)
    events: EventHub  # live call updates for the operator console (GET /api/events)
    emulator: AcsEmulator | None  # the ACS emulator when it is this app's ACS (test calls)
    call_end_webhook: CallEndWebhook | None  # each ended call's record (CALL_END_WEBHOOK_URL)
    stopping: ShutdownSignal  # `requested` once a stop signal arrived (the app drains)


async def build_services(
    settings: Settings,
    stack: AsyncExitStack,
    *,
    emulator: AcsEmulator | None = None,
    agents: Agents | None = None,
    environ: Mapping[str, str] | None = None,
    stopping: ShutdownSignal | None = None,
) -> Services:
    """Open every dependency the app needs; `stack` closes them in reverse order.

    `emulator` is the ACS emulator the settings point at, when it is this app's ACS; `agents`
    what AGENTS_FILE held at startup (loaded here without it), `environ` what the agent tools
    files' `${VAR}` come from (the process environment, handed over by the composition root)."""
    environ = environ if environ is not None else {}
    security = await build_security(settings, stack)
    # REDIS_URL set: Redis store and bus; unset: in memory. Closed after the media sessions.
    metrics = Metrics()
    events = EventHub()
    webhook = await _open_call_end_webhook(settings, metrics, stack)
    storage = await open_call_storage(
        settings,
        stack,
        observe=lambda inner: ObservedCallStore(
            inner, events, metrics, on_ended=webhook.call_ended if webhook else None
        ),
    )
    store = storage.store
    if webhook is not None:
        webhook.attach(store)
        # Before the store closes: a delivery given up at shutdown is logged with its call.
        stack.push_async_callback(webhook.close)
    control = CallControl(await open_acs_client(settings, stack), settings)
    # Opened before the sessions' cleanup is registered, so shared backend resources (an Entra
    # credential) close after the last session.
    directory = AgentDirectory(settings, environ, stack)
    await directory.open(agents if agents is not None else load_agents(settings, environ))
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
        intake=CallIntake(store, control, storage.bus, directory.line_agent, metrics),
        operations=CallOperations(store, control, storage.bus),
        media=media,
        agents=directory,
        backend_factory=directory.backend,
        security=security,
        metrics=metrics,
        events=events,
        emulator=emulator,
        call_end_webhook=webhook,
        stopping=stopping or ShutdownSignal(),
    )


async def _open_call_end_webhook(
    settings: Settings, metrics: Metrics, stack: AsyncExitStack
) -> CallEndWebhook | None:
    if settings.call_end_webhook_url is None:
        return None
    client = await stack.enter_async_context(httpx.AsyncClient(follow_redirects=False))
    return CallEndWebhook.from_settings(settings, metrics, client)
