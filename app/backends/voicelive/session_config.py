"""What the bridge asks of a Voice Live session, built from settings with the SDK's models.

Voice Live takes the call's own rate both ways (16 or 24 kHz PCM16), so a call is never
resampled for it. Every (re)connected socket is a new session and gets the same update.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

from azure.ai.voicelive.models import (
    AudioEchoCancellation,
    AudioInputTranscriptionOptions,
    AudioNoiseReduction,
    AzureSemanticDetection,
    AzureSemanticDetectionMultilingual,
    AzureSemanticVad,
    AzureSemanticVadMultilingual,
    AzureStandardVoice,
    ClientEventSessionUpdate,
    EouDetection,
    FunctionTool,
    OpenAIVoice,
    RequestSession,
    ServerVad,
    Tool,
    TurnDetection,
)

from app.settings import EndOfUtterance, Settings, VoiceLiveTurnDetection

# The service's PCM16 output formats by rate; input takes the rate as `input_audio_sampling_rate`.
OUTPUT_FORMATS: Final[Mapping[int, str]] = {
    24000: "pcm16",
    16000: "pcm16_16000hz",
    8000: "pcm16_8000hz",
}
OPENAI_VOICES: Final = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}
)
EouThreshold = Literal["low", "medium", "high", "default"]
_OFF_WHEN_NONE = (
    "turn_detection",
    "input_audio_noise_reduction",
    "input_audio_echo_cancellation",
    "input_audio_transcription",
)


@dataclass(frozen=True, slots=True)
class VoiceLiveSession:
    """The AZURE_VOICELIVE_* session settings."""

    voice: str = "en-US-Ava:DragonHDLatestNeural"
    turn_detection: VoiceLiveTurnDetection = "azure_semantic_vad"
    vad_threshold: float = 0.3
    vad_prefix_padding_ms: int = 300
    vad_silence_duration_ms: int = 500
    remove_filler_words: bool = False
    end_of_utterance: EndOfUtterance = "none"
    eou_threshold: EouThreshold = "default"
    eou_timeout_ms: int = 1000
    noise_suppression: bool = True
    echo_cancellation: bool = True
    input_transcription: bool = True
    transcription_model: str = "azure-speech"
    transcription_language: str | None = None
    agent: bool = False  # a Foundry agent: its own instructions apply

    @classmethod
    def from_settings(cls, settings: Settings) -> VoiceLiveSession:
        """The AZURE_VOICELIVE_* settings."""
        return cls(
            voice=settings.azure_voicelive_voice,
            turn_detection=settings.azure_voicelive_turn_detection,
            vad_threshold=settings.azure_voicelive_vad_threshold,
            vad_prefix_padding_ms=settings.azure_voicelive_vad_prefix_padding_ms,
            vad_silence_duration_ms=settings.azure_voicelive_vad_silence_duration_ms,
            remove_filler_words=settings.azure_voicelive_remove_filler_words,
            end_of_utterance=settings.azure_voicelive_end_of_utterance,
            eou_threshold=settings.azure_voicelive_eou_threshold,
            eou_timeout_ms=settings.azure_voicelive_eou_timeout_ms,
            noise_suppression=settings.azure_voicelive_noise_suppression,
            echo_cancellation=settings.azure_voicelive_echo_cancellation,
            input_transcription=settings.azure_voicelive_input_transcription,
            transcription_model=settings.azure_voicelive_transcription_model,
            transcription_language=settings.azure_voicelive_transcription_language or None,
            agent=settings.azure_voicelive_agent_id is not None,
        )


def session_update(
    config: VoiceLiveSession,
    instructions: str,
    tools: Sequence[Mapping[str, Any]],
    sample_rate: int,
) -> dict[str, Any]:
    """The `session.update` for a call at `sample_rate`; raises ValueError for a rate the
    service does not take."""
    output_format = OUTPUT_FORMATS.get(sample_rate)
    if output_format is None:
        raise ValueError(f"Voice Live takes 8, 16 or 24 kHz audio, not {sample_rate} Hz")
    session = RequestSession(
        modalities=["text", "audio"],
        voice=_voice(config.voice),
        input_audio_format="pcm16",
        input_audio_sampling_rate=sample_rate,
        output_audio_format=output_format,
        turn_detection=turn_detection(config),
        input_audio_noise_reduction=(
            AudioNoiseReduction(type="azure_deep_noise_suppression")
            if config.noise_suppression
            else None
        ),
        input_audio_echo_cancellation=(
            AudioEchoCancellation() if config.echo_cancellation else None
        ),
        input_audio_transcription=(
            AudioInputTranscriptionOptions(
                model=config.transcription_model, language=config.transcription_language
            )
            if config.input_transcription
            else None
        ),
    )
    if not config.agent:
        session.instructions = instructions
    if tools:
        session.tools = [_function_tool(tool) for tool in tools]
        session.tool_choice = "auto"
    event: dict[str, Any] = ClientEventSessionUpdate(session=session).as_dict()
    # Omitted, a field keeps the service's default: what is off is sent as an explicit null.
    for name in _OFF_WHEN_NONE:
        event["session"].setdefault(name, None)
    return event


def turn_detection(config: VoiceLiveSession) -> TurnDetection | None:
    """Azure semantic VAD (with end-of-utterance detection if configured) or server VAD."""
    kind = config.turn_detection
    common: dict[str, Any] = {
        "threshold": config.vad_threshold,
        "prefix_padding_ms": config.vad_prefix_padding_ms,
        "silence_duration_ms": config.vad_silence_duration_ms,
        "end_of_utterance_detection": _end_of_utterance(config),
        "create_response": True,
        "interrupt_response": True,
    }
    if kind == "server_vad":
        return ServerVad(**common)
    if kind == "azure_semantic_vad":
        return AzureSemanticVad(**common, remove_filler_words=config.remove_filler_words)
    if kind == "azure_semantic_vad_multilingual":
        return AzureSemanticVadMultilingual(
            **common, remove_filler_words=config.remove_filler_words
        )
    return None


def _end_of_utterance(config: VoiceLiveSession) -> EouDetection | None:
    if config.end_of_utterance == "semantic_detection_v1":
        return AzureSemanticDetection(
            threshold_level=config.eou_threshold, timeout_ms=config.eou_timeout_ms
        )
    if config.end_of_utterance == "semantic_detection_v1_multilingual":
        return AzureSemanticDetectionMultilingual(
            threshold_level=config.eou_threshold, timeout_ms=config.eou_timeout_ms
        )
    return None


def _voice(name: str) -> OpenAIVoice | AzureStandardVoice:
    if name in OPENAI_VOICES:
        return OpenAIVoice(name=name)
    return AzureStandardVoice(name=name)


def _function_tool(tool: Mapping[str, Any]) -> Tool:
    return FunctionTool(
        name=str(tool["name"]),
        description=tool.get("description"),
        parameters=tool.get("parameters"),
    )
