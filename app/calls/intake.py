"""Turning Event Grid deliveries and ACS callbacks into calls and state changes."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from app.calls import record_changes
from app.calls.acs_codes import explain_failure
from app.calls.call_bus import CallBus, CallBusError
from app.calls.control import CallControl, CallControlError
from app.calls.deliveries import (
    INCOMING_CALL,
    SUBSCRIPTION_VALIDATION,
    CallbackEvent,
    GridEvent,
    IncomingCall,
    parse_incoming_call,
    validation_code,
)
from app.calls.store import CallStore
from app.observability.metrics import Metrics

log = logging.getLogger(__name__)

# The called party (raw id) -> the name of the agent that answers it, None for no agent.
LineRouter = Callable[[str | None], str | None]

# Event Grid retries for up to 24 h; a claim must outlive the retries it deduplicates.
CLAIM_TTL_S = 24 * 3600.0
# ACS retries a callback it got no 2xx for within minutes, not hours; an hour covers the retries
# and keeps a claim per callback event (ten or so per call) from piling up in the store.
CALLBACK_CLAIM_TTL_S = 3600.0
CALL_EVENT_TIMEOUT_S = 2.0  # the callback route answers ACS after it


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What a delivery did: a validation code to echo, calls answered, duplicates skipped."""

    validation_response: str | None = None
    answered: tuple[str, ...] = ()
    duplicates: int = 0
    ignored: int = 0


@dataclass(frozen=True, slots=True)
class CallbackOutcome:
    """What a callback delivery did: events applied, and repeats of applied ones skipped."""

    applied: int = 0
    duplicates: int = 0


class CallIntake:
    """Answers incoming calls exactly once and applies callbacks to call state."""

    def __init__(
        self,
        store: CallStore,
        control: CallControl,
        bus: CallBus,
        route: LineRouter,
        metrics: Metrics,
    ) -> None:
        self._store = store
        self._control = control
        self._bus = bus
        self._route = route
        self._metrics = metrics

    async def handle_grid_events(self, events: list[GridEvent]) -> DeliveryOutcome:
        """Process an Event Grid batch in order."""
        answered: list[str] = []
        duplicates = ignored = 0
        for event in events:
            if event.type == SUBSCRIPTION_VALIDATION:
                return DeliveryOutcome(validation_response=validation_code(event))
            if event.type != INCOMING_CALL:
                ignored += 1
                continue
            call_id = await self._answer_once(event)
            if call_id is None:
                duplicates += 1
            else:
                answered.append(call_id)
        return DeliveryOutcome(answered=tuple(answered), duplicates=duplicates, ignored=ignored)

    async def apply_callbacks(self, events: list[CallbackEvent]) -> CallbackOutcome:
        """Fold callback events into call state, in delivery order.

        ACS retries callbacks: an event whose id was applied before, here or on another
        instance, changes nothing (neither the record nor the backend). An event without an id
        cannot be told from its repeats and is applied each time."""
        applied = duplicates = 0
        for event in events:
            claim = f"callback:{event.call_connection_id}:{event.id}" if event.id else None
            if claim is not None and not await self._store.claim(claim, CALLBACK_CLAIM_TTL_S):
                log.info("callback event %s (%s) already applied", event.id, event.name)
                duplicates += 1
                continue
            explanation = explain_failure(event.result.get("code"), event.result.get("subCode"))
            if explanation:
                log.warning("%s for call %s: %s", event.name, event.call_connection_id, explanation)
            try:
                mutation = record_changes.apply_callback(event)
                await self._store.update(event.call_connection_id, mutation)
            except Exception:
                # Not applied: ACS's retry (503 from the store) must be able to apply it.
                if claim is not None:
                    await self._store.release(claim)
                raise
            applied += 1
            if event.name in record_changes.ACTION_OUTCOMES:
                await self._tell_backend(event)
        return CallbackOutcome(applied=applied, duplicates=duplicates)

    async def _tell_backend(self, event: CallbackEvent) -> None:
        """Pass an action's outcome to the call's backend, on whichever instance holds it."""
        result = event.result
        data = {
            "operation_context": event.operation_context,
            "code": result.get("code"),
            "sub_code": result.get("subCode"),
            "message": result.get("message"),
        }
        try:
            await self._bus.request(
                event.call_connection_id,
                "call_event",
                {"name": event.name, "data": data},
                timeout_s=CALL_EVENT_TIMEOUT_S,
            )
        except CallBusError as exc:
            # The media socket may be gone already (a transfer ends it): the record has it all.
            log.info("call event %s not passed to a backend: %s", event.name, type(exc).__name__)

    async def _answer_once(self, event: GridEvent) -> str | None:
        incoming = parse_incoming_call(event)
        # Two keys: a retry keeps the event id; a re-published event keeps the context.
        keys = (f"incoming:event:{event.id}", f"incoming:ctx:{incoming.context_digest}")
        claimed: list[str] = []
        for key in keys:
            if not await self._store.claim(key, CLAIM_TTL_S):
                for held in claimed:
                    await self._store.release(held)
                log.info("incoming call event %s already handled", event.id)
                return None
            claimed.append(key)
        agent = self._route(incoming.callee)
        try:
            if agent is None:
                await self._reject_unrouted(event.id, incoming)
                return None
            placed = await self._control.answer(incoming)
        except CallControlError:
            # Let Event Grid's retry (or another instance) try again.
            for key in claimed:
                await self._store.release(key)
            raise
        await self._store.update(
            placed.call_connection_id,
            record_changes.new_inbound_call(placed.call_connection_id, incoming, agent),
        )
        self._metrics.call_routed(agent)
        log.info(
            "answered incoming call to %s with agent %s",
            incoming.callee,
            agent,
            extra={
                "call_connection_id": placed.call_connection_id,
                "correlation_id": incoming.correlation_id,
                "agent": agent,
            },
        )
        return placed.call_connection_id

    async def _reject_unrouted(self, event_id: str, incoming: IncomingCall) -> None:
        # Answering would leave the caller in silence: no agent is configured for this line.
        await self._control.reject(incoming)
        self._metrics.call_unrouted()
        log.warning(
            "rejected incoming call %s to %s: no route and no default agent (AGENTS_FILE)",
            event_id,
            incoming.callee,
            extra={"correlation_id": incoming.correlation_id},
        )
