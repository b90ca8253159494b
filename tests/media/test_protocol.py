"""Parsing ACS media messages and building ours."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from app.backends.base import AudioIn, DtmfIn, TranscriptIn
from app.media.protocol import (
    STOP_AUDIO,
    AudioMetadata,
    MalformedMessage,
    TranscriptionMetadata,
    UnknownMessage,
    audio_message,
    parse_message,
)
from tests.conftest import CORPUS

INBOUND = {p.stem: p.read_text() for p in sorted((CORPUS / "websocket_inbound").glob("*.json"))}


def test_corpus_audio_metadata() -> None:
    parsed = parse_message(INBOUND["docs_AudioMetadata"])
    assert parsed == AudioMetadata(
        16000, 640, subscription_id="89e8cb59-b991-48b0-b154-1db84f16a077"
    )


def test_corpus_dtmf() -> None:
    assert parse_message(INBOUND["docs_DtmfData"]) == DtmfIn("3")


def test_corpus_transcription_keeps_big_offsets() -> None:
    parsed = parse_message(INBOUND["docs_TranscriptionData"])
    assert isinstance(parsed, TranscriptIn)
    assert parsed.final
    assert parsed.offset == 2516998782481234400
    assert parsed.duration is None


def test_corpus_transcription_metadata() -> None:
    parsed = parse_message(INBOUND["docs_TranscriptionMetadata"])
    assert isinstance(parsed, TranscriptionMetadata)
    assert parsed.locale == "en-us"


def test_corpus_truncated_audio_is_malformed_not_a_crash() -> None:
    with pytest.raises(MalformedMessage):
        parse_message(INBOUND["docs_AudioData_truncated_values.json".removesuffix(".json")])


def test_audio_with_optional_fields_missing() -> None:
    data = base64.b64encode(bytes(640)).decode()
    parsed = parse_message(
        json.dumps({"kind": "AudioData", "audioData": {"data": data, "mark": 1}})
    )
    assert parsed == AudioIn(bytes(640))


def test_unmixed_audio_keeps_the_participant() -> None:
    data = base64.b64encode(b"\x01\x00").decode()
    message = {
        "kind": "AudioData",
        "audioData": {"data": data, "participantRawID": "8:acs:x", "silent": True},
    }
    parsed = parse_message(json.dumps(message))
    assert parsed == AudioIn(b"\x01\x00", "8:acs:x", True)


@pytest.mark.parametrize("status", ["final", "FINAL", "Intermediate", "intermediate"])
def test_transcription_status_in_any_casing(status: str) -> None:
    message = {
        "kind": "TranscriptionData",
        "transcriptionData": {"text": "hi", "resultStatus": status},
    }
    parsed = parse_message(json.dumps(message))
    assert isinstance(parsed, TranscriptIn)
    assert parsed.final is (status.lower() == "final")


def test_unknown_kinds_are_tolerated() -> None:
    assert parse_message('{"kind": "Novel", "novel": {}}') == UnknownMessage("Novel")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "nope",
        "[]",
        "{}",
        '{"kind": 5}',
        '{"kind": "AudioData", "audioData": []}',
        '{"kind": "AudioData", "audioData": {"data": "AAA"}}',
        '{"kind": "AudioData", "audioData": {"data": "AQ=="}}',
        '{"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 8000}}',
        '{"kind": "AudioMetadata", "audioMetadata": {"sampleRate": 16000, "channels": 2}}',
        '{"kind": "DtmfData", "dtmfData": {"data": ""}}',
        '{"kind": "TranscriptionData", "transcriptionData": {"text": 1}}',
    ],
)
def test_malformed_messages_raise(text: str) -> None:
    with pytest.raises(MalformedMessage):
        parse_message(text)


def test_outbound_audio_and_stop_audio_shapes() -> None:
    message = json.loads(audio_message(b"\x01\x02"))
    assert message == {"Kind": "AudioData", "AudioData": {"Data": "AQI="}, "StopAudio": None}
    assert json.loads(STOP_AUDIO) == {"Kind": "StopAudio", "AudioData": None, "StopAudio": {}}


def test_corpus_files_are_all_covered() -> None:
    assert set(INBOUND) == {
        "docs_AudioMetadata",
        "docs_DtmfData",
        "docs_TranscriptionMetadata",
        "docs_TranscriptionData",
        "docs_AudioData_truncated_values",
    }
    assert Path(CORPUS).is_dir()
