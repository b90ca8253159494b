"""The load generator's ACS messages and echo matching, without sockets."""

from __future__ import annotations

import base64
import json

from bench.acs_frames import CallFrames, frame_bytes, is_stop_audio, parse_echo


def _echo(message: bytes, *, camel: bool = False, spaced: bool = False) -> bytes:
    data = json.loads(message)["audioData"]["data"]
    if camel:
        body = {"kind": "AudioData", "audioData": {"data": data}, "stopAudio": None}
    else:
        body = {"Kind": "AudioData", "AudioData": {"Data": data}, "StopAudio": None}
    separators = (", ", ": ") if spaced else (",", ":")
    return json.dumps(body, separators=separators).encode()


def test_audio_data_is_an_acs_frame_of_the_stream_size() -> None:
    frames = CallFrames(3, 16000, "4:+15550000003")
    message = json.loads(frames.audio_data(7, 1_731_698_172.925))
    assert message["kind"] == "AudioData"
    audio = message["audioData"]
    assert audio["timestamp"] == "2024-11-15T19:16:12.925Z"
    assert audio["participantRawID"] == "4:+15550000003"
    assert audio["silent"] is False
    assert len(base64.b64decode(audio["data"])) == frame_bytes(16000) == 640


def test_audio_metadata_announces_rate_and_frame_length() -> None:
    frames = CallFrames(0, 24000, "4:+1")
    metadata = json.loads(frames.audio_metadata("sub-1"))["audioMetadata"]
    assert metadata == {
        "subscriptionId": "sub-1",
        "encoding": "PCM",
        "sampleRate": 24000,
        "channels": 1,
        "length": 960,
    }


def test_echo_is_matched_to_its_call_and_sequence() -> None:
    frames = CallFrames(12, 16000, "4:+1")
    echoed = parse_echo(_echo(frames.audio_data(345, 0.0)), frames.body_b64)
    assert echoed is not None
    assert (echoed.call_index, echoed.seq, echoed.intact) == (12, 345, True)


def test_camel_case_and_spaced_echoes_are_matched() -> None:
    frames = CallFrames(1, 24000, "4:+1")
    for echo in (
        _echo(frames.audio_data(9, 0.0), camel=True),
        _echo(frames.audio_data(9, 0.0), spaced=True),
    ):
        echoed = parse_echo(echo, frames.body_b64)
        assert echoed is not None
        assert (echoed.seq, echoed.intact) == (9, True)


def test_altered_body_is_reported_not_intact() -> None:
    frames = CallFrames(1, 16000, "4:+1")
    message = _echo(frames.audio_data(2, 0.0)).replace(frames.body_b64[:8], b"AAAAAAAA")
    echoed = parse_echo(message, frames.body_b64)
    assert echoed is not None
    assert not echoed.intact


def test_audio_without_marker_is_not_matched() -> None:
    pcm = base64.b64encode(bytes(640)).decode()
    message = json.dumps({"Kind": "AudioData", "AudioData": {"Data": pcm}, "StopAudio": None})
    assert parse_echo(message.encode(), b"") is None


def test_stop_audio_is_recognised() -> None:
    stop = b'{"Kind":"StopAudio","AudioData":null,"StopAudio":{}}'
    assert parse_echo(stop, b"") is None
    assert is_stop_audio(stop)
