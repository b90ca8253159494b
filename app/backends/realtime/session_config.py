"""What the bridge asks of a Realtime session, built from settings (pure: no I/O here).

Every (re)connected socket is a new, empty session, so the same `session.update` is sent each
time; the greeting is asked for once per call.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

from openai.types.realtime.realtime_audio_config_input_param import (
    RealtimeAudioConfigInputParam,
)
from openai.types.realtime.realtime_audio_formats_param import AudioPCM
from openai.types.realtime.realtime_audio_input_turn_detection_param import (
    RealtimeAudioInputTurnDetectionParam,
)
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam
from openai.types.realtime.realtime_session_create_request_param import (
    RealtimeSessionCreateRequestParam,
)
from openai.types.realtime.response_create_event_param import ResponseCreateEventParam
from openai.types.realtime.session_update_event_param import SessionUpdateEventParam

from app.settings import Settings, TurnDetection

ClientEvent = Mapping[str, Any]

MODEL_SAMPLE_RATE: Final = 24000
PCM_FORMAT: AudioPCM = {"type": "audio/pcm", "rate": MODEL_SAMPLE_RATE}
GREETING_EVENT_ID = "greeting"

Eagerness = Literal["low", "medium", "high", "auto"]


@dataclass(frozen=True, slots=True)
class RealtimeConfig:
    """The session settings of one Realtime backend."""

    instructions: str
    instructions_file: Path | None = None
    voice: str = "alloy"
    turn_detection: TurnDetection = "server_vad"
    vad_threshold: float = 0.5
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    vad_eagerness: Eagerness = "auto"
    input_transcription: bool = True
    transcription_model: str = "gpt-4o-mini-transcribe"
    greeting: str | None = None
    append_ms: int = 20
    # The service brings its own persona (a Voice Live agent): no instructions are sent, and
    # the greeting is asked for without replacing the persona's for that response.
    service_persona: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> RealtimeConfig:
        """The REALTIME_* settings."""
        return cls(
            instructions=settings.realtime_instructions,
            instructions_file=settings.realtime_instructions_file,
            voice=settings.realtime_voice,
            turn_detection=settings.realtime_turn_detection,
            vad_threshold=settings.realtime_vad_threshold,
            vad_prefix_padding_ms=settings.realtime_vad_prefix_padding_ms,
            vad_silence_duration_ms=settings.realtime_vad_silence_duration_ms,
            vad_eagerness=settings.realtime_vad_eagerness,
            input_transcription=settings.realtime_input_transcription,
            transcription_model=settings.realtime_transcription_model,
            greeting=settings.realtime_greeting or None,
            append_ms=settings.realtime_append_ms,
        )

    def with_acs_turns(self) -> RealtimeConfig:
        """The same, with the service's turn detection off: ACS transcription drives turns."""
        return dataclasses.replace(self, turn_detection="none")

    def with_service_persona(self) -> RealtimeConfig:
        """The same, for a service with its own persona: no instructions of ours at all."""
        return dataclasses.replace(
            self, instructions="", instructions_file=None, service_persona=True
        )

    def append_bytes_at(self, sample_rate: int) -> int:
        """Bytes of caller audio per `input_audio_buffer.append` of PCM16 at `sample_rate`."""
        return sample_rate * 2 * self.append_ms // 1000


def session_update(
    config: RealtimeConfig,
    instructions: str,
    tools: Sequence[RealtimeFunctionToolParam] = (),
) -> SessionUpdateEventParam:
    """The `session.update` sent first on every connection, offering `tools` if any."""
    audio_input: RealtimeAudioConfigInputParam = {
        "format": PCM_FORMAT,
        "turn_detection": turn_detection(config),
    }
    if config.input_transcription:
        audio_input["transcription"] = {"model": config.transcription_model}
    session: RealtimeSessionCreateRequestParam = {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": instructions,
        "audio": {
            "input": audio_input,
            "output": {"format": PCM_FORMAT, "voice": config.voice},
        },
    }
    if tools:
        session["tools"] = list(tools)
        session["tool_choice"] = "auto"
    return {"type": "session.update", "session": session}


def turn_detection(config: RealtimeConfig) -> RealtimeAudioInputTurnDetectionParam | None:
    """Server or semantic VAD with their parameters; None (JSON null) turns it off."""
    if config.turn_detection == "server_vad":
        return {
            "type": "server_vad",
            "threshold": config.vad_threshold,
            "prefix_padding_ms": config.vad_prefix_padding_ms,
            "silence_duration_ms": config.vad_silence_duration_ms,
            "create_response": True,
            "interrupt_response": True,
        }
    if config.turn_detection == "semantic_vad":
        return {
            "type": "semantic_vad",
            "eagerness": config.vad_eagerness,
            "create_response": True,
            "interrupt_response": True,
        }
    return None


def greeting_request(config: RealtimeConfig, instructions: str) -> list[ClientEvent]:
    """What makes the model speak first, if a greeting is configured: a `response.create`
    (after a note for the model when the service keeps its own persona)."""
    if not config.greeting:
        return []
    prompt = f"Start the call now: {config.greeting}"
    if config.service_persona:
        # Response-level instructions would replace the agent's own for the greeting.
        note: ClientEvent = {
            "type": "conversation.item.create",
            "item": {
                "type": "message",
                "role": "system",
                "content": [{"type": "input_text", "text": prompt}],
            },
        }
        return [note, {"type": "response.create", "event_id": GREETING_EVENT_ID}]
    # Response-level instructions replace the session's for this response: keep the persona.
    request: ResponseCreateEventParam = {
        "type": "response.create",
        "event_id": GREETING_EVENT_ID,
        "response": {"instructions": f"{instructions}\n\n{prompt}"},
    }
    return [request]
