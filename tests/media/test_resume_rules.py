"""Which calls may resume a dropped stream, read from the call's record (no sockets)."""

from __future__ import annotations

import pytest

from app.calls.models import CallRecord, ConnectionState, MediaState
from app.media.resume import media_stopped, resumable


def _record(media: MediaState, connection: ConnectionState) -> CallRecord:
    return CallRecord(call_connection_id="c", media_state=media, connection_state=connection)


@pytest.mark.parametrize(
    # DISABLED: MediaStreamingStarted not folded in yet; the stream itself proved media was on.
    "media",
    [MediaState.ACTIVE, MediaState.STARTING, MediaState.DISABLED],
)
def test_a_connected_call_with_media_on_is_resumable(media: MediaState) -> None:
    assert resumable(_record(media, ConnectionState.CONNECTED))


@pytest.mark.parametrize("media", [MediaState.STOPPING, MediaState.STOPPED, MediaState.FAILED])
def test_a_call_whose_media_was_stopped_is_not_resumable(media: MediaState) -> None:
    assert not resumable(_record(media, ConnectionState.CONNECTED))
    assert media_stopped(_record(media, ConnectionState.CONNECTED))


@pytest.mark.parametrize(
    "connection", [ConnectionState.DISCONNECTING, ConnectionState.DISCONNECTED]
)
def test_a_call_that_is_ending_is_not_resumable(connection: ConnectionState) -> None:
    assert not resumable(_record(MediaState.ACTIVE, connection))


def test_an_unknown_call_is_not_resumable() -> None:
    assert not resumable(None)
    assert media_stopped(None)
