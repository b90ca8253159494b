"""session.update and the greeting, built from settings."""

from __future__ import annotations

from app.backends.realtime.session_config import (
    RealtimeConfig,
    greeting_request,
    session_update,
    turn_detection,
)
from app.settings import Settings


def test_semantic_vad_carries_its_eagerness() -> None:
    config = RealtimeConfig(instructions="x", turn_detection="semantic_vad", vad_eagerness="low")
    assert turn_detection(config) == {
        "type": "semantic_vad",
        "eagerness": "low",
        "create_response": True,
        "interrupt_response": True,
    }


def test_turn_detection_none_is_sent_as_null() -> None:
    update = session_update(RealtimeConfig(instructions="x", turn_detection="none"), "x")
    assert update["session"]["audio"]["input"]["turn_detection"] is None


def test_input_transcription_off_leaves_it_out() -> None:
    update = session_update(RealtimeConfig(instructions="x", input_transcription=False), "x")
    assert "transcription" not in update["session"]["audio"]["input"]


def test_no_greeting_means_no_response_create() -> None:
    assert greeting_request(RealtimeConfig(instructions="x"), "x") == []


def test_greeting_keeps_the_session_instructions() -> None:
    [request] = greeting_request(RealtimeConfig(instructions="x", greeting="Say hi."), "Persona.")
    assert request["response"]["instructions"] == "Persona.\n\nStart the call now: Say hi."


def test_a_service_persona_is_greeted_for_without_instructions_of_ours() -> None:
    config = RealtimeConfig(instructions="Persona.", greeting="Say hi.").with_service_persona()
    note, request = greeting_request(config, config.instructions)
    assert note["item"]["role"] == "system"
    assert note["item"]["content"] == [
        {"type": "input_text", "text": "Start the call now: Say hi."}
    ]
    assert request == {"type": "response.create", "event_id": "greeting"}
    assert (config.instructions, config.instructions_file) == ("", None)


def test_config_reads_every_realtime_setting() -> None:
    settings = Settings(
        _env_file=None,
        realtime_voice="cedar",
        realtime_turn_detection="semantic_vad",
        realtime_vad_eagerness="high",
        realtime_input_transcription=False,
        realtime_greeting="",
        realtime_append_ms=100,
    )
    config = RealtimeConfig.from_settings(settings)
    assert (config.voice, config.turn_detection, config.vad_eagerness) == (
        "cedar",
        "semantic_vad",
        "high",
    )
    assert config.input_transcription is False
    assert config.greeting is None
    assert config.append_bytes_at(24000) == 4800
    assert config.append_bytes_at(16000) == 3200
