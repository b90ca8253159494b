"""How a media session shows on the call's record (mutations for `CallStore.update`).

The session keeps the record as it last saw it stored (`LastKnownRecord`). When the store lost
the record (a Redis restart without persistence), the session is the one that holds the call
live, so its writes rebuild the whole record from that copy, merged so that nothing moves
backwards (`restore_lost`), rather than a near-empty one.
"""

from __future__ import annotations

from typing import Protocol

from app.calls.models import (
    MAX_TOOL_CALLS,
    MAX_TRANSCRIPT_ENTRIES,
    BackendHealth,
    CallRecord,
    MediaConnection,
    utcnow,
)
from app.calls.record_merge import restore_lost
from app.calls.store import Mutation
from app.media.stats import MediaStats


class CallIds(Protocol):
    @property
    def call_connection_id(self) -> str: ...
    @property
    def correlation_id(self) -> str | None: ...


class LastKnownRecord:
    """The call's record as the media session last saw it stored."""

    def __init__(self) -> None:
        self.record: CallRecord | None = None

    def keep(self, record: CallRecord) -> None:
        self.record = record


def media_connected(call: CallIds, instance_id: str | None = None) -> Mutation:
    """The media socket of the call is open (on this instance)."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or _fresh(call)
        media = MediaConnection(connected=True, instance_id=instance_id, connected_at=utcnow())
        return record.model_copy(update={"media": media}).with_event("MediaConnected")

    return mutate


def media_progress(
    call: CallIds, stats: MediaStats, last_known: CallRecord | None = None
) -> Mutation:
    """Counters and transcripts so far; the whole record again if the store lost it."""

    def mutate(current: CallRecord | None) -> CallRecord:
        return _with_stats(restore_lost(current, last_known) or _fresh(call), stats)

    return mutate


def media_disconnected(
    call: CallIds, stats: MediaStats, reason: str, last_known: CallRecord | None = None
) -> Mutation:
    """The media socket closed."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = _with_stats(restore_lost(current, last_known) or _fresh(call), stats)
        media = record.media.model_copy(
            update={"connected": False, "disconnected_at": utcnow(), "close_reason": reason}
        )
        return record.model_copy(update={"media": media}).with_event(
            "MediaDisconnected", detail=reason
        )

    return mutate


def backend_health(
    call: CallIds,
    health: BackendHealth,
    event: str | None,
    detail: str | None,
    last_known: CallRecord | None = None,
) -> Mutation:
    """The backend's health changed: the record's `backend`, and `event` in recent_events."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = restore_lost(current, last_known) or _fresh(call)
        record = record.model_copy(update={"backend": health, "updated_at": utcnow()})
        return record.with_event(event, detail=detail) if event is not None else record

    return mutate


def _fresh(call: CallIds) -> CallRecord:
    # The store lost the record before this session saw it stored: rebuild what we know.
    return CallRecord(
        call_connection_id=call.call_connection_id, correlation_id=call.correlation_id
    )


def _with_stats(record: CallRecord, stats: MediaStats) -> CallRecord:
    media = record.media.model_copy(
        update={
            "sample_rate": stats.sample_rate,
            "frames_in": stats.frames_in,
            "frames_out": stats.frames_out,
            "malformed_frames": stats.malformed,
            "dropped_frames": stats.dropped,
            "dtmf": stats.dtmf,
        }
    )
    updates: dict[str, object] = {"media": media, "updated_at": utcnow()}
    if stats.transcripts:
        # Earlier media sessions of the call keep their lines; this session's are rewritten whole
        # so the mutation stays pure (a shared store may apply it more than once).
        earlier = [e for e in record.transcript if e.time < stats.started_at]
        updates["transcript"] = (earlier + stats.transcripts)[-MAX_TRANSCRIPT_ENTRIES:]
    if stats.tool_calls:
        # Rewritten whole, like the transcript, so applying the mutation twice changes nothing.
        earlier_calls = [c for c in record.tool_calls if c.time < stats.started_at]
        updates["tool_calls"] = (earlier_calls + stats.tool_calls)[-MAX_TOOL_CALLS:]
    metrics = dict(record.metrics)
    if stats.turn_latencies_ms:
        # The whole turn where the bridge timed it (its share each way included), else the
        # backend's own figure.
        whole = [turn.turn_ms for turn in stats.latency.turns] or stats.turn_latencies_ms
        latencies = sorted(whole)
        metrics["turns"] = len(stats.turn_latencies_ms)
        metrics["turn_latency_ms_p50"] = latencies[len(latencies) // 2]
        metrics["turn_latency_ms_last"] = whole[-1]
    if stats.latency.turns:
        # Per turn, the latest ones: the whole, the backend's share, the bridge's each way.
        metrics["turn_breakdown"] = [turn.as_dict() for turn in stats.latency.turns]
    if metrics != record.metrics:
        updates["metrics"] = metrics
    return record.model_copy(update=updates)
