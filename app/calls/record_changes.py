"""How callback events and control actions change a call's record (pure functions).

Each function returns a `Mutation` for `CallStore.update`, so the store can apply it atomically.
Events may arrive late, twice, or at two instances at once. The connection state only moves
forward (connecting -> connected -> disconnecting -> disconnected); a media event older than the
last media event applied is recorded in `recent_events` but does not change the media state.
"""

from __future__ import annotations

import logging
from datetime import datetime

from app.calls.acs_codes import explain_failure
from app.calls.deliveries import CallbackEvent, IncomingCall
from app.calls.models import (
    MAX_ACTIONS,
    CallAction,
    CallRecord,
    ConnectionState,
    Direction,
    EndedBy,
    MediaFailure,
    MediaState,
    utcnow,
)
from app.calls.record_merge import RANK
from app.calls.store import Mutation

log = logging.getLogger(__name__)


_MEDIA_EVENTS = {
    "MediaStreamingStarted": MediaState.ACTIVE,
    "MediaStreamingStopped": MediaState.STOPPED,
    "MediaStreamingFailed": MediaState.FAILED,
}
_MEDIA_STATUS = {
    "mediastreamingstarted": MediaState.ACTIVE,
    "mediastreamingstopped": MediaState.STOPPED,
    "mediastreamingfailed": MediaState.FAILED,
    "unspecifiederror": MediaState.FAILED,
}
_ENDING_EVENTS = {"CallDisconnected", "AnswerFailed", "CreateCallFailed"}
KNOWN_EVENTS = {
    "CallConnected",
    "ParticipantsUpdated",
    "AddParticipantSucceeded",
    "AddParticipantFailed",
    "RemoveParticipantSucceeded",
    "RemoveParticipantFailed",
    "CallTransferAccepted",
    "CallTransferFailed",
    "PlayStarted",
    "PlayCompleted",
    "PlayFailed",
    "PlayCanceled",
    "RecognizeCompleted",
    "RecognizeFailed",
    "RecognizeCanceled",
    "ContinuousDtmfRecognitionToneReceived",
    "ContinuousDtmfRecognitionToneFailed",
    "ContinuousDtmfRecognitionStopped",
    "SendDtmfTonesCompleted",
    "SendDtmfTonesFailed",
    "CancelAddParticipantSucceeded",
    "CancelAddParticipantFailed",
    "TranscriptionStarted",
    "TranscriptionStopped",
    "TranscriptionUpdated",
    "TranscriptionFailed",
    "HoldFailed",
    "ConnectFailed",
    "StartRecordingFailed",
    "PlayPaused",
    "PlayResumed",
    "MediaStreamingUpdate",
    *_MEDIA_EVENTS,
    *_ENDING_EVENTS,
}


def new_inbound_call(
    call_connection_id: str, incoming: IncomingCall, agent: str | None = None
) -> Mutation:
    """Record a call we just answered with `agent` (keeps what callbacks may have written)."""

    def mutate(current: CallRecord | None) -> CallRecord:
        base = current or CallRecord(call_connection_id=call_connection_id)
        return base.model_copy(
            update={
                "direction": Direction.INBOUND,
                "caller": incoming.caller,
                "callee": incoming.callee,
                "caller_display_name": incoming.caller_display_name,
                "agent": agent,
                "server_call_id": base.server_call_id or incoming.server_call_id,
                "correlation_id": base.correlation_id or incoming.correlation_id,
            }
        ).with_event("Answered", detail=f"event {incoming.event_id}")

    return mutate


def new_outbound_call(
    call_connection_id: str,
    target: str,
    source: str | None,
    correlation_id: str | None,
    agent: str | None = None,
) -> Mutation:
    """Record a call we placed, served by `agent`."""

    def mutate(current: CallRecord | None) -> CallRecord:
        base = current or CallRecord(call_connection_id=call_connection_id)
        return base.model_copy(
            update={
                "direction": Direction.OUTBOUND,
                "caller": source,
                "callee": target,
                "agent": agent,
                "correlation_id": base.correlation_id or correlation_id,
            }
        ).with_event("CallCreated", detail=f"to {target}")

    return mutate


def media_requested(state: MediaState) -> Mutation:
    """A control action asked ACS to start (STARTING) or stop (STOPPING) streaming."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        if current is None or current.connection_state is ConnectionState.DISCONNECTED:
            return None
        name = "MediaStartRequested" if state is MediaState.STARTING else "MediaStopRequested"
        return current.model_copy(update={"media_state": state}).with_event(name)

    return mutate


def media_request_failed(previous: MediaState, reason: str) -> Mutation:
    """ACS refused a start/stop: put the media state back."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        if current is None:
            return None
        if current.media_state not in (MediaState.STARTING, MediaState.STOPPING):
            return current.with_event("MediaRequestFailed", detail=reason)
        return current.model_copy(update={"media_state": previous}).with_event(
            "MediaRequestFailed", detail=reason
        )

    return mutate


def hang_up_requested(by: EndedBy = EndedBy.API) -> Mutation:
    """We asked ACS to hang up; `by` becomes `ended_by` when CallDisconnected follows."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        if current is None or current.connection_state is ConnectionState.DISCONNECTED:
            return None
        action = CallAction(
            kind="hang_up",
            operation_context=f"hang_up-{current.call_connection_id}",
            requested_by=by.value,
            outcome="accepted",
        )
        return current.model_copy(
            update={
                "connection_state": ConnectionState.DISCONNECTING,
                # The first cause asked for wins: a failover's hang-up stays the failover's.
                "end_requested_by": current.end_requested_by or by,
                "actions": [*current.actions, action][-MAX_ACTIONS:],
            }
        ).with_event("HangUpRequested", detail=f"by {by.value}")

    return mutate


def end_cause(by: EndedBy | None, replacing: EndedBy | None = None) -> Mutation:
    """Note who is about to end the call (`by`), or take back `replacing` (the request failed)."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        if current is None or current.connection_state is ConnectionState.DISCONNECTED:
            return None
        if by is None:
            if current.end_requested_by is not replacing:
                return None
            return current.model_copy(update={"end_requested_by": None})
        if current.end_requested_by is not None:
            return None  # the first cause asked for wins
        return current.model_copy(update={"end_requested_by": by})

    return mutate


def action_requested(action: CallAction) -> Mutation:
    """We asked ACS for a call action (its outcome callback updates it)."""

    def mutate(current: CallRecord | None) -> CallRecord | None:
        if current is None:
            return None
        actions = [*current.actions, action][-MAX_ACTIONS:]
        event = "TransferRequested" if action.kind == "transfer" else "SendDtmfRequested"
        return current.model_copy(update={"actions": actions}).with_event(
            event, detail=action.detail
        )

    return mutate


# Outcome callbacks of call actions, matched to the action by operation context.
ACTION_OUTCOMES = {
    "CallTransferAccepted": "accepted",
    "CallTransferFailed": "failed",
    "SendDtmfTonesCompleted": "completed",
    "SendDtmfTonesFailed": "failed",
}


def _with_action_outcome(record: CallRecord, event: CallbackEvent) -> CallRecord:
    outcome = ACTION_OUTCOMES.get(event.name)
    if outcome is None or not event.operation_context:
        return record
    updates: dict[str, object] = {}
    actions = []
    for action in record.actions:
        if action.operation_context == event.operation_context:
            action = action.model_copy(
                update={"outcome": outcome, "outcome_detail": _result_text(event)}
            )
            if event.name == "CallTransferAccepted" and record.end_requested_by is None:
                # The transferred party leaves the bridge's leg: its end is the requester's.
                updates["end_requested_by"] = _cause(action.requested_by)
        actions.append(action)
    updates["actions"] = actions
    return record.model_copy(update=updates)


def _cause(requested_by: str) -> EndedBy:
    try:
        return EndedBy(requested_by)
    except ValueError:
        return EndedBy.AGENT  # a backend's own name: the agent asked


def apply_callback(event: CallbackEvent) -> Mutation:
    """Fold one callback event into the call's record."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or CallRecord(call_connection_id=event.call_connection_id)
        record = record.model_copy(
            update={
                "server_call_id": record.server_call_id or event.server_call_id,
                "correlation_id": record.correlation_id or event.correlation_id,
            }
        )
        detail = _detail(event)
        record = _with_action_outcome(
            record.with_event(event.name, time=event.time, detail=detail), event
        )
        if event.name not in KNOWN_EVENTS:
            log.info("ignoring callback event %s for %s", event.name, event.call_connection_id)
            return record
        if record.connection_state is ConnectionState.DISCONNECTED:
            return record
        return record.model_copy(update=_transition(record, event))

    return mutate


def _transition(record: CallRecord, event: CallbackEvent) -> dict[str, object]:
    now = event.time or utcnow()
    if event.name == "CallConnected":
        if RANK[record.connection_state] >= RANK[ConnectionState.CONNECTED]:
            return {}
        return {"connection_state": ConnectionState.CONNECTED, "connected_at": now}
    if event.name in _ENDING_EVENTS:
        media = record.media_state
        if media in (MediaState.ACTIVE, MediaState.STARTING, MediaState.STOPPING):
            media = MediaState.STOPPED
        return {
            "connection_state": ConnectionState.DISCONNECTED,
            "disconnected_at": now,
            "disconnect_reason": _result_text(event) or event.name,
            "media_state": media,
            "ended_by": record.ended_by or _ended_by(record, event),
        }
    media_state = _media_state(event)
    if media_state is None or _is_stale(record, event.time):
        return {}
    # `last_event_time` orders media events only: connection events have their own rank.
    updates: dict[str, object] = {"media_state": media_state, "last_event_time": event.time}
    if media_state is MediaState.FAILED:
        update = _media_update(event)
        result = event.result
        updates["media_failure"] = MediaFailure(
            status=_str_or_none(update.get("mediaStreamingStatus")),
            status_details=_str_or_none(update.get("mediaStreamingStatusDetails")),
            code=_int_or_none(result.get("code")),
            sub_code=_int_or_none(result.get("subCode")),
            message=_str_or_none(result.get("message")),
            explanation=explain_failure(result.get("code"), result.get("subCode")),
        )
    elif media_state is MediaState.ACTIVE:
        updates["media_failure"] = None
    return updates


def _ended_by(record: CallRecord, event: CallbackEvent) -> EndedBy:
    if record.end_requested_by is not None:
        return record.end_requested_by
    code = event.result.get("code")
    if event.name == "CallDisconnected" and (
        code is None or (isinstance(code, int) and code < 300)
    ):
        return EndedBy.CALLER  # 200/7000 "The conversation has ended": the other party hung up
    return EndedBy.ACS


def _media_state(event: CallbackEvent) -> MediaState | None:
    update = _media_update(event)
    content_type = update.get("contentType")
    if isinstance(content_type, str) and content_type.lower() != "audio":
        return None
    status = update.get("mediaStreamingStatus")
    if isinstance(status, str) and status.lower() in _MEDIA_STATUS:
        return _MEDIA_STATUS[status.lower()]
    return _MEDIA_EVENTS.get(event.name)


def _media_update(event: CallbackEvent) -> dict[str, object]:
    update = event.data.get("mediaStreamingUpdate")
    return update if isinstance(update, dict) else {}


def _is_stale(record: CallRecord, time: datetime | None) -> bool:
    return time is not None and record.last_event_time is not None and time < record.last_event_time


def _detail(event: CallbackEvent) -> str | None:
    update = _media_update(event)
    details = update.get("mediaStreamingStatusDetails")
    parts = [p for p in (_str_or_none(details), _result_text(event)) if p]
    return "; ".join(parts) or None


def _result_text(event: CallbackEvent) -> str | None:
    result = event.result
    if not result:
        return None
    code, sub, message = result.get("code"), result.get("subCode"), result.get("message")
    if code in (None, 200) and not message:
        return None
    text = f"{code}/{sub} {message or ''}".strip()
    explanation = explain_failure(code, sub)
    return f"{text} ({explanation})" if explanation else text


def _str_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _int_or_none(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
