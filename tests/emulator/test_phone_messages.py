"""The softphone socket's messages from the browser."""

from __future__ import annotations

import json

import pytest

from app.emulator.phone_messages import (
    MAX_AUDIO_BYTES,
    Audio,
    BadMessage,
    Dtmf,
    HangUp,
    Start,
    parse_phone_message,
)


def text(body: object) -> str:
    return json.dumps(body)


def test_each_message_parses() -> None:
    assert parse_phone_message(text({"type": "start", "sample_rate": 48000}), None) == Start(48000)
    assert parse_phone_message(None, b"\x01\x00") == Audio(b"\x01\x00")
    assert parse_phone_message(text({"type": "dtmf", "tones": "09*#AD"}), None) == Dtmf("09*#AD")
    assert parse_phone_message(text({"type": "hangup"}), None) == HangUp()


@pytest.mark.parametrize(
    ("raw_text", "data", "why"),
    [
        ("{", None, "not JSON"),
        ("[" * 100_000, None, "oversized"),
        ("[1]", None, "not a JSON object"),
        (text({"type": "start", "sample_rate": 4000}), None, "sample_rate"),
        (text({"type": "start", "sample_rate": 48000.0}), None, "sample_rate"),
        (text({"type": "start", "sample_rate": True}), None, "sample_rate"),
        (text({"type": "dtmf", "tones": ""}), None, "tones"),
        (text({"type": "dtmf", "tones": "1" * 19}), None, "tones"),
        (text({"type": "dtmf", "tones": 5}), None, "tones"),
        (text({"type": "ring"}), None, "unknown message type 'ring'"),
        (None, b"\x00", "odd number"),
        (None, bytes(MAX_AUDIO_BYTES + 2), "at most"),
        (None, None, "empty"),
    ],
)
def test_a_bad_message_says_why(raw_text: str | None, data: bytes | None, why: str) -> None:
    with pytest.raises(BadMessage, match=why):
        parse_phone_message(raw_text, data)
