"""How a media session shows on the call's record (mutations for `CallStore.update`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.calls.models import (
    MAX_TRANSCRIPT_ENTRIES,
    CallRecord,
    MediaConnection,
    TranscriptEntry,
    utcnow,
)
from app.calls.store import Mutation

if TYPE_CHECKING:
    from app.media.session import MediaSession


def media_connected(session: MediaSession, instance_id: str | None = None) -> Mutation:
    """The media socket of the call is open (on this instance)."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = current or CallRecord(
            call_connection_id=session.call.call_connection_id,
            correlation_id=session.call.correlation_id,
        )
        media = MediaConnection(connected=True, instance_id=instance_id, connected_at=utcnow())
        return record.model_copy(update={"media": media}).with_event("MediaConnected")

    return mutate


def media_progress(session: MediaSession) -> Mutation:
    """Counters and transcripts so far."""

    def mutate(current: CallRecord | None) -> CallRecord:
        return _with_stats(current or _fresh(session), session)

    return mutate


def media_disconnected(session: MediaSession, reason: str) -> Mutation:
    """The media socket closed."""

    def mutate(current: CallRecord | None) -> CallRecord:
        record = _with_stats(current or _fresh(session), session)
        media = record.media.model_copy(
            update={"connected": False, "disconnected_at": utcnow(), "close_reason": reason}
        )
        return record.model_copy(update={"media": media}).with_event(
            "MediaDisconnected", detail=reason
        )

    return mutate


def _fresh(session: MediaSession) -> CallRecord:
    # The store lost the record (a Redis restart without persistence): rebuild what we know.
    return CallRecord(
        call_connection_id=session.call.call_connection_id,
        correlation_id=session.call.correlation_id,
    )


def _with_stats(record: CallRecord, session: MediaSession) -> CallRecord:
    stats = session.stats
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
        mine = [TranscriptEntry(role=r, text=t, time=at) for r, t, at in stats.transcripts]
        updates["transcript"] = (earlier + mine)[-MAX_TRANSCRIPT_ENTRIES:]
    if stats.turn_latencies_ms:
        latencies = sorted(stats.turn_latencies_ms)
        updates["metrics"] = {
            **record.metrics,
            "turns": len(latencies),
            "turn_latency_ms_p50": latencies[len(latencies) // 2],
            "turn_latency_ms_last": stats.turn_latencies_ms[-1],
        }
    return record.model_copy(update=updates)
