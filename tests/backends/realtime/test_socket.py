"""The model's audio deltas are read as plain JSON; everything else goes through the SDK."""

from __future__ import annotations

import orjson

from app.backends.realtime.socket import AudioDelta, audio_delta


def test_an_audio_delta_is_read_without_the_sdks_models() -> None:
    raw = orjson.dumps(
        {
            "event_id": "event_1",
            "type": "response.output_audio.delta",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "AAAA",
        }
    )
    assert audio_delta(raw) == AudioDelta("resp_1", "item_1", "AAAA")
    assert audio_delta(raw.decode()) == AudioDelta("resp_1", "item_1", "AAAA")


def test_other_events_and_malformed_deltas_are_left_to_the_sdk() -> None:
    assert audio_delta(b'{"type":"session.created","session":{}}') is None
    assert audio_delta(b'{"type":"response.output_audio.delta","item_id":"i","delta":"A"}') is None
    assert audio_delta(b"[1, 2]") is None
    assert audio_delta(b"not json") is None
