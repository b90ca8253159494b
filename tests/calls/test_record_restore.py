"""Rebuilding a record the store lost: from the media owner's last copy, nothing moves backwards."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest

from app.calls.models import (
    CallAction,
    CallRecord,
    ConnectionState,
    EventSummary,
    MediaConnection,
    MediaState,
)
from app.calls.record_merge import merge_forward, restore_lost
from app.calls.store import Mutation
from app.media import session_record
from app.media.stats import MediaStats

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


@dataclass(frozen=True)
class Ids:
    call_connection_id: str = "c1"
    correlation_id: str | None = "corr"


def last_known() -> CallRecord:
    """The whole record as the media owner (instance b) last saw it stored."""
    return CallRecord(
        call_connection_id="c1",
        correlation_id="corr",
        server_call_id="srv",
        caller="4:+1425",
        callee="28:acs",
        connection_state=ConnectionState.CONNECTED,
        connected_at=T0 + timedelta(seconds=1),
        media_state=MediaState.ACTIVE,
        last_event_time=T0 + timedelta(seconds=2),
        media=MediaConnection(connected=True, instance_id="b", frames_in=100, frames_out=90),
        created_at=T0,
        updated_at=T0 + timedelta(seconds=10),
        recent_events=[EventSummary(type="CallConnected", time=T0 + timedelta(seconds=1))],
        actions=[
            CallAction(kind="send_dtmf", operation_context="op1", detail="12", requested_at=T0)
        ],
        metrics={"turns": 3},
    )


def rebuilt(**fields: object) -> CallRecord:
    """What a write that found no record builds: near empty, created after the loss."""
    values: dict[str, object] = {
        "call_connection_id": "c1",
        "created_at": T0 + timedelta(seconds=20),
        "updated_at": T0 + timedelta(seconds=20),
        **fields,
    }
    return CallRecord.model_validate(values)


def applied(mutate: Mutation, current: CallRecord | None) -> CallRecord:
    record = mutate(current)
    assert record is not None
    return record


def test_a_lost_record_comes_back_whole() -> None:
    assert restore_lost(None, last_known()) == last_known()


def test_the_same_record_is_kept_as_is() -> None:
    current = last_known().model_copy(update={"connection_state": ConnectionState.DISCONNECTING})
    assert restore_lost(current, last_known()) is current


def test_without_a_copy_the_current_record_stays() -> None:
    current = rebuilt()
    assert restore_lost(current, None) is current
    assert restore_lost(None, None) is None


def test_a_partial_record_does_not_move_a_connected_call_back_to_connecting() -> None:
    partial = rebuilt(
        recent_events=[EventSummary(type="ParticipantsUpdated", time=T0 + timedelta(seconds=19))]
    )
    merged = restore_lost(partial, last_known())
    assert merged is not None
    assert merged.connection_state is ConnectionState.CONNECTED
    assert merged.connected_at == T0 + timedelta(seconds=1)
    assert (merged.caller, merged.callee) == ("4:+1425", "28:acs")
    assert (merged.server_call_id, merged.correlation_id) == ("srv", "corr")
    assert merged.media.connected is True
    assert merged.media.instance_id == "b"
    assert merged.media_state is MediaState.ACTIVE
    assert merged.created_at == T0
    assert [e.type for e in merged.recent_events] == ["CallConnected", "ParticipantsUpdated"]
    assert merged.actions == last_known().actions
    assert merged.metrics == {"turns": 3}


def test_newer_facts_of_the_partial_record_win() -> None:
    ended = T0 + timedelta(seconds=19)
    partial = rebuilt(
        connection_state=ConnectionState.DISCONNECTED,
        disconnected_at=ended,
        disconnect_reason="CallDisconnected",
        media_state=MediaState.STOPPED,
        last_event_time=ended,
        actions=[last_known().actions[0].model_copy(update={"outcome": "completed"})],
        metrics={"turns": 4},
    )
    merged = merge_forward(partial, last_known())
    assert merged.connection_state is ConnectionState.DISCONNECTED
    assert merged.disconnected_at == ended
    assert merged.connected_at == T0 + timedelta(seconds=1)
    assert merged.media_state is MediaState.STOPPED
    assert [a.outcome for a in merged.actions] == ["completed"]
    assert merged.metrics == {"turns": 4}


def test_an_older_media_event_of_the_partial_record_loses() -> None:
    partial = rebuilt(media_state=MediaState.STARTING, last_event_time=T0)
    merged = merge_forward(partial, last_known())
    assert merged.media_state is MediaState.ACTIVE
    assert merged.last_event_time == T0 + timedelta(seconds=2)


@pytest.mark.parametrize(
    ("partial_state", "known_state"), list(itertools.product(ConnectionState, repeat=2))
)
def test_the_connection_state_never_moves_backwards(
    partial_state: ConnectionState, known_state: ConnectionState
) -> None:
    known = last_known().model_copy(update={"connection_state": known_state})
    merged = merge_forward(rebuilt(connection_state=partial_state), known)
    rank = list(ConnectionState).index  # connecting < connected < disconnecting < disconnected
    assert rank(merged.connection_state) == max(rank(partial_state), rank(known_state))


def test_media_progress_rebuilds_the_whole_record_with_fresh_counters() -> None:
    stats = MediaStats(frames_in=250, frames_out=240, sample_rate=16000)
    record = applied(session_record.media_progress(Ids(), stats, last_known()), None)
    assert record.connection_state is ConnectionState.CONNECTED
    assert record.caller == "4:+1425"
    assert record.media.connected is True
    assert record.media.instance_id == "b"
    assert (record.media.frames_in, record.media.frames_out) == (250, 240)


def test_media_progress_over_a_partial_record_keeps_what_the_owner_knew() -> None:
    stats = MediaStats(frames_in=250)
    record = applied(session_record.media_progress(Ids(), stats, last_known()), rebuilt())
    assert record.connection_state is ConnectionState.CONNECTED
    assert record.caller == "4:+1425"
    assert record.media.instance_id == "b"
    assert record.media.frames_in == 250


def test_media_progress_without_a_copy_still_writes_the_counters() -> None:
    record = applied(session_record.media_progress(Ids(), MediaStats(frames_in=7)), None)
    assert record.correlation_id == "corr"
    assert record.media.frames_in == 7


def test_media_disconnected_rebuilds_before_it_records_the_close() -> None:
    record = applied(
        session_record.media_disconnected(Ids(), MediaStats(), "ended", last_known()), None
    )
    assert record.connection_state is ConnectionState.CONNECTED
    assert record.caller == "4:+1425"
    assert record.media.connected is False
    assert record.media.close_reason == "ended"
