"""The `/ws` route ACS connects to: thin, it admits the socket and runs a MediaSession."""

from __future__ import annotations

import logging

from fastapi import APIRouter, WebSocket

from app.agents.models import Agent
from app.api.deps import get_ws_services
from app.calls.call_actions import BackendCallActions
from app.calls.call_bus import CallBusError
from app.calls.store import StoreUnavailable
from app.media.commands import media_commands
from app.media.failover import Failover
from app.media.live_sessions import TooManyCalls
from app.media.session import CallIdentity, MediaSession
from app.observability.logging import bind_call
from app.observability.metrics import SessionMetrics
from app.security.dependencies import refuse_ws_upgrade, verify_ws_upgrade
from app.services import Services

log = logging.getLogger(__name__)

HANDOVER_TIMEOUT_S = 2.0  # the old owner answers at once; never hold a new call up longer

router = APIRouter()


@router.websocket("/ws")
async def media_socket(websocket: WebSocket) -> None:
    services = get_ws_services(websocket)
    call = call_identity(websocket)
    verdict = await verify_ws_upgrade(websocket)
    if not verdict.allowed:
        # Refused before accept: not one byte of audio is read from an unauthenticated peer.
        log.warning(
            "refused unauthenticated media socket",
            extra={"call_connection_id": call.call_connection_id},
        )
        await refuse_ws_upgrade(websocket, verdict)
        return
    try:
        services.media.admit()
    except TooManyCalls as exc:
        await websocket.accept()
        await websocket.close(code=1013, reason=str(exc)[:120])
        log.warning(
            "refused media socket: %s", exc, extra={"call_connection_id": call.call_connection_id}
        )
        return
    await websocket.accept()
    previous = services.media.find(call.call_connection_id)
    if previous is None:
        await _take_over_elsewhere(services, call)
    agent = await _call_agent(services, call)
    # The agent's settings: the global ones with its per-call keys (backend, prompt, tools,
    # transfer targets, failover) applied.
    settings = agent.settings
    session = MediaSession(
        websocket,
        call,
        settings=settings,
        store=services.store,
        writer=services.writer,
        backend_factory=lambda: services.backend_factory(settings),
        actions=BackendCallActions(
            services.operations, call.call_connection_id, settings.transfer_targets, by="agent"
        ),
        failover=Failover(
            agent.failover,
            call.call_connection_id,
            store=services.store,
            writer=services.writer,
            actions=lambda by: BackendCallActions(
                services.operations, call.call_connection_id, settings.transfer_targets, by=by
            ),
            metrics=services.metrics,
        ),
        metrics=SessionMetrics(services.metrics, settings.media_backend),
        events=services.events,
        # A new socket of a call whose earlier one is still here takes over its backend.
        previous=previous,
    )
    with bind_call(call.call_connection_id, call.correlation_id, agent.name):
        async with (
            services.media.hold(session),
            # This instance now owns the call's media: control actions reach it over the bus.
            services.bus.serve(call.call_connection_id, media_commands(session)),
        ):
            await session.run()


async def _call_agent(services: Services, call: CallIdentity) -> Agent:
    """The agent the call started with (its record says which), wherever it started."""
    name: str | None = None
    try:
        record = await services.store.get(call.call_connection_id)
    except StoreUnavailable:
        record = None  # the socket still gets audio; the agent is the default one
    if record is not None:
        name = record.agent
    return services.agents.for_call(call.call_connection_id, name)


async def _take_over_elsewhere(services: Services, call: CallIdentity) -> None:
    """A re-established stream that reached this instance ends the call's media on the one
    that still holds it (parked or live); the new backend gets the conversation from the
    shared call state."""
    try:
        await services.bus.request(
            call.call_connection_id,
            "end_media",
            {"reason": "media stream re-established on another instance"},
            timeout_s=HANDOVER_TIMEOUT_S,
        )
    except CallBusError:
        return  # nobody else holds the call's media: the usual first connection
    log.info(
        "took the media stream over from another instance",
        extra={"call_connection_id": call.call_connection_id},
    )


def call_identity(websocket: WebSocket) -> CallIdentity:
    """The call a socket belongs to: ACS's upgrade headers, else the transport URL's query."""
    headers, query = websocket.headers, websocket.query_params
    call_id = headers.get("x-ms-call-connection-id") or query.get("callConnectionId")
    correlation = headers.get("x-ms-call-correlation-id") or query.get("correlationId")
    if not call_id:
        # Without a call id, the correlation id still ties the socket to its call's logs.
        call_id = f"unknown-{correlation}" if correlation else f"unknown-{id(websocket):x}"
    return CallIdentity(call_connection_id=call_id[:256], correlation_id=correlation)
