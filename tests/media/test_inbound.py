"""The inbound stream's rules, driven without a socket."""

from __future__ import annotations

import base64
import json

import pytest

from app.backends.base import AudioIn, DtmfIn, TranscriptIn
from app.media.inbound import InboundStream, Opened, Skipped, StreamEnded, StreamState
from app.media.stats import MediaStats

LIMIT = 4096


def text(message: dict[str, object]) -> dict[str, object]:
    return {"type": "websocket.receive", "text": json.dumps(message)}


def metadata(rate: int = 16000) -> dict[str, object]:
    body = {"mediaSubscriptionId": "s", "encoding": "PCM", "sampleRate": rate, "channels": 1}
    return text({"kind": "AudioMetadata", "audioMetadata": body})


def audio(pcm: bytes = bytes(640)) -> dict[str, object]:
    data = base64.b64encode(pcm).decode()
    return text({"kind": "AudioData", "audioData": {"data": data, "silent": False}})


def dtmf(digit: str) -> dict[str, object]:
    return text({"kind": "DtmfData", "dtmfData": {"data": digit}})


@pytest.fixture
def stream() -> InboundStream:
    return InboundStream(LIMIT, MediaStats())


def test_metadata_opens_the_stream_once(stream: InboundStream) -> None:
    states = [stream.state]
    opened = stream.receive(metadata())
    states.append(stream.state)
    assert states == [StreamState.AWAITING_METADATA, StreamState.STREAMING]
    assert isinstance(opened, Opened)
    assert opened.metadata.sample_rate == 16000
    assert stream.receive(metadata()) is None  # a repeat of the same format changes nothing
    assert stream.stats.sample_rate == 16000


def test_audio_before_metadata_is_counted_and_skipped(stream: InboundStream) -> None:
    assert stream.receive(audio()) == Skipped("AudioData before AudioMetadata")
    assert stream.stats.malformed == 1
    assert stream.stats.frames_in == 0


def test_audio_while_streaming_is_handed_on_and_counted(stream: InboundStream) -> None:
    stream.receive(metadata())
    frame = stream.receive(audio(b"\x01\x00" * 320))
    assert isinstance(frame, AudioIn)
    assert frame.pcm == b"\x01\x00" * 320
    assert stream.stats.frames_in == 1


def test_a_sample_rate_change_mid_stream_is_skipped(stream: InboundStream) -> None:
    stream.receive(metadata(16000))
    assert stream.receive(metadata(24000)) == Skipped(
        "AudioMetadata changed the sample rate mid-stream"
    )
    assert stream.sample_rate == 16000


def test_dtmf_is_recorded_always_and_handed_on_only_while_streaming(
    stream: InboundStream,
) -> None:
    assert stream.receive(dtmf("1")) is None
    stream.receive(metadata())
    tone = stream.receive(dtmf("2"))
    assert isinstance(tone, DtmfIn)
    assert stream.stats.dtmf == "12"


def test_a_final_transcript_is_kept(stream: InboundStream) -> None:
    stream.receive(metadata())
    body = {"text": "hello", "resultStatus": "Final", "participantRawID": "4:+1425"}
    result = stream.receive(text({"kind": "TranscriptionData", "transcriptionData": body}))
    assert isinstance(result, TranscriptIn)
    assert [(line.role, line.text) for line in stream.stats.transcripts] == [("4:+1425", "hello")]


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.receive", "text": "not json"},
        {"type": "websocket.receive", "text": "[1, 2]"},
        {"type": "websocket.receive", "bytes": b"\x00\x01"},
        text({"kind": "AudioData", "audioData": {"data": "***"}}),
    ],
)
def test_garbled_frames_are_skipped_not_fatal(
    stream: InboundStream, message: dict[str, object]
) -> None:
    stream.receive(metadata())
    assert isinstance(stream.receive(message), Skipped)
    assert stream.state is StreamState.STREAMING
    assert stream.stats.malformed == 1


@pytest.mark.parametrize(
    "message",
    [
        {"type": "websocket.receive", "text": "x" * (LIMIT + 1)},
        {"type": "websocket.receive", "text": "é" * (LIMIT // 2 + 1)},  # bytes, not characters
        {"type": "websocket.receive", "bytes": bytes(LIMIT + 1)},
    ],
)
def test_a_message_over_the_limit_ends_the_stream_with_1009(
    stream: InboundStream, message: dict[str, object]
) -> None:
    with pytest.raises(StreamEnded) as ended:
        stream.receive(message)
    assert ended.value.end.close_code == 1009
    assert stream.state is StreamState.CLOSED


def test_a_message_at_the_limit_is_read(stream: InboundStream) -> None:
    assert isinstance(stream.receive({"type": "websocket.receive", "text": "x" * LIMIT}), Skipped)


@pytest.mark.parametrize(
    ("code", "reason"),
    [(1000, "ACS closed the media socket"), (1007, "invalid UTF-8 in a text frame")],
)
def test_a_disconnect_ends_the_stream_without_a_close_of_ours(
    stream: InboundStream, code: int, reason: str
) -> None:
    with pytest.raises(StreamEnded) as ended:
        stream.receive({"type": "websocket.disconnect", "code": code})
    assert ended.value.end.reason == reason
    assert ended.value.end.close_code is None
