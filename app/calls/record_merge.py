"""A call's record rebuilt after the store lost it, merged with the last whole copy an instance
kept, so that nothing moves backwards (pure functions)."""

from __future__ import annotations

from typing import TypeVar

from app.calls.models import (
    MAX_ACTIONS,
    MAX_RECENT_EVENTS,
    MAX_TOOL_CALLS,
    MAX_TRANSCRIPT_ENTRIES,
    CallAction,
    CallRecord,
    ConnectionState,
)

_Item = TypeVar("_Item")

# The connection state only moves forward.
RANK = {
    ConnectionState.CONNECTING: 0,
    ConnectionState.CONNECTED: 1,
    ConnectionState.DISCONNECTING: 2,
    ConnectionState.DISCONNECTED: 3,
}


def restore_lost(current: CallRecord | None, last_known: CallRecord | None) -> CallRecord | None:
    """The record to build on when the store may have lost it (a Redis restart without data).

    `last_known` is a whole record as one instance last saw it stored. A `current` created after
    it was rebuilt from partial data (a callback or a write that found no record): the two are
    merged so that nothing moves backwards. Otherwise `current` is the same record, kept as is.
    """
    if last_known is None:
        return current
    if current is None:
        return last_known
    if current.created_at <= last_known.created_at:
        return current
    return merge_forward(current, last_known)


def merge_forward(rebuilt: CallRecord, last_known: CallRecord) -> CallRecord:
    """`rebuilt` (newer facts, partial) over `last_known` (older, whole), moving nothing back.

    The connection state keeps the higher rank, media states the later media event; fields
    the rebuilt record lacks come from `last_known`; lists are united; created_at is the older.
    """
    ahead = RANK[rebuilt.connection_state] >= RANK[last_known.connection_state]
    state, other = (rebuilt, last_known) if ahead else (last_known, rebuilt)
    media_newer = rebuilt.last_event_time is not None and (
        last_known.last_event_time is None or rebuilt.last_event_time >= last_known.last_event_time
    )
    media_from = rebuilt if media_newer else last_known
    placed = rebuilt.caller is not None or rebuilt.callee is not None
    parties = rebuilt if placed else last_known
    owned = rebuilt.media.connected or rebuilt.media.instance_id is not None
    return rebuilt.model_copy(
        update={
            "server_call_id": rebuilt.server_call_id or last_known.server_call_id,
            "correlation_id": rebuilt.correlation_id or last_known.correlation_id,
            "direction": parties.direction,
            "caller": parties.caller,
            "caller_display_name": parties.caller_display_name,
            "callee": parties.callee,
            "connection_state": state.connection_state,
            "connected_at": state.connected_at or other.connected_at,
            "disconnected_at": state.disconnected_at or other.disconnected_at,
            "disconnect_reason": state.disconnect_reason or other.disconnect_reason,
            "ended_by": state.ended_by or other.ended_by,
            "end_requested_by": state.end_requested_by or other.end_requested_by,
            "backend": rebuilt.backend or last_known.backend,
            "media_state": media_from.media_state,
            "media_failure": media_from.media_failure,
            "last_event_time": media_from.last_event_time,
            "media": rebuilt.media if owned else last_known.media,
            "created_at": min(rebuilt.created_at, last_known.created_at),
            "updated_at": max(rebuilt.updated_at, last_known.updated_at),
            "recent_events": _united(last_known.recent_events, rebuilt.recent_events)[
                -MAX_RECENT_EVENTS:
            ],
            "transcript": sorted(
                _united(last_known.transcript, rebuilt.transcript), key=lambda e: e.time
            )[-MAX_TRANSCRIPT_ENTRIES:],
            "actions": _united_actions(last_known.actions, rebuilt.actions)[-MAX_ACTIONS:],
            "tool_calls": sorted(
                _united(last_known.tool_calls, rebuilt.tool_calls), key=lambda c: c.time
            )[-MAX_TOOL_CALLS:],
            "metrics": {**last_known.metrics, **rebuilt.metrics},
        }
    )


def _united(older: list[_Item], newer: list[_Item]) -> list[_Item]:
    return [*older, *(item for item in newer if item not in older)]


def _united_actions(older: list[CallAction], newer: list[CallAction]) -> list[CallAction]:
    # The same action (by operation context) in both: the rebuilt record knows its later outcome.
    by_context = {a.operation_context: a for a in newer}
    kept = [by_context.pop(a.operation_context, a) for a in older]
    return [*kept, *by_context.values()]
