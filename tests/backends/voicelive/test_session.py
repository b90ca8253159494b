"""The Voice Live session from settings, and the call's audio both ways at its own rate."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from app.backends.base import AudioIn
from app.emulator.media_client import tone
from tests.backends.realtime.fake_server import FakeRealtime, model_tone
from tests.backends.voicelive.conftest import VoiceLiveBackend


async def session_update(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend, **settings: Any
) -> dict[str, Any]:
    index = len(fake.sessions)
    async with open_voicelive(**settings):
        update = await (await fake.session(index)).wait_for_event("session.update")
    session: dict[str, Any] = update["session"]
    return session


async def test_the_defaults_ask_for_azure_semantic_vad_noise_suppression_and_echo_cancellation(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    session = await session_update(fake, open_voicelive, realtime_instructions="Be brief.")
    assert session["instructions"] == "Be brief."
    assert session["modalities"] == ["text", "audio"]
    assert session["voice"] == {"type": "azure-standard", "name": "en-US-Ava:DragonHDLatestNeural"}
    assert session["turn_detection"] == {
        "type": "azure_semantic_vad",
        "threshold": 0.3,
        "prefix_padding_ms": 300,
        "silence_duration_ms": 500,
        "remove_filler_words": False,
        "create_response": True,
        "interrupt_response": True,
    }
    assert session["input_audio_noise_reduction"] == {"type": "azure_deep_noise_suppression"}
    assert session["input_audio_echo_cancellation"] == {"type": "server_echo_cancellation"}
    assert session["input_audio_transcription"] == {"model": "azure-speech"}
    assert [tool["name"] for tool in session["tools"]] == ["end_call"]  # the built-in tool


async def test_every_audio_option_follows_its_setting(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    session = await session_update(
        fake,
        open_voicelive,
        azure_voicelive_voice="alloy",
        azure_voicelive_turn_detection="azure_semantic_vad_multilingual",
        azure_voicelive_vad_threshold=0.6,
        azure_voicelive_vad_prefix_padding_ms=200,
        azure_voicelive_vad_silence_duration_ms=350,
        azure_voicelive_remove_filler_words=True,
        azure_voicelive_end_of_utterance="semantic_detection_v1",
        azure_voicelive_eou_threshold="high",
        azure_voicelive_eou_timeout_ms=800,
        azure_voicelive_noise_suppression=False,
        azure_voicelive_echo_cancellation=False,
        azure_voicelive_transcription_model="gpt-4o-transcribe",
        azure_voicelive_transcription_language="en-GB",
        agent_end_call_tool=False,
    )
    assert session["voice"] == {"type": "openai", "name": "alloy"}
    detection = session["turn_detection"]
    assert detection["type"] == "azure_semantic_vad_multilingual"
    assert (detection["threshold"], detection["prefix_padding_ms"]) == (0.6, 200)
    assert detection["silence_duration_ms"] == 350
    assert detection["remove_filler_words"] is True
    assert detection["end_of_utterance_detection"] == {
        "model": "semantic_detection_v1",
        "threshold_level": "high",
        "timeout_ms": 800,
    }
    # Off is an explicit null: an omitted field would keep the service's default.
    assert session["input_audio_noise_reduction"] is None
    assert session["input_audio_echo_cancellation"] is None
    assert session["input_audio_transcription"] == {
        "model": "gpt-4o-transcribe",
        "language": "en-GB",
    }
    assert "tools" not in session


async def test_server_vad_and_no_turn_detection(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    session = await session_update(
        fake, open_voicelive, azure_voicelive_turn_detection="server_vad"
    )
    assert session["turn_detection"]["type"] == "server_vad"
    assert "remove_filler_words" not in session["turn_detection"]
    session = await session_update(fake, open_voicelive, azure_voicelive_turn_detection="none")
    assert session["turn_detection"] is None  # explicit: omitted would keep the default VAD
    session = await session_update(fake, open_voicelive, azure_voicelive_input_transcription=False)
    assert session["input_audio_transcription"] is None


@pytest.mark.parametrize(("rate", "output_format"), [(16000, "pcm16_16000hz"), (24000, "pcm16")])
async def test_the_call_rate_is_used_both_ways_without_resampling(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend, rate: int, output_format: str
) -> None:
    caller = tone(rate, 0.6, freq=500.0)
    frame = rate * 2 // 50
    async with open_voicelive(rate=rate, realtime_append_ms=60) as (backend, output):
        assert backend.sample_rate is None  # the media session keeps the call's rate
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        for start in range(0, len(caller), frame):
            await backend.receive(AudioIn(caller[start : start + frame]))
        await session.wait_for(lambda s: len(s.appended) == len(caller))
        said = model_tone(500, rate=rate)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", said)
        await output.wait_for(lambda o: len(o.played["item_a1"]) == len(said))
    assert update["session"]["input_audio_sampling_rate"] == rate
    assert update["session"]["output_audio_format"] == output_format
    assert bytes(session.appended) == caller  # the caller's audio, sample for sample
    assert set(session.append_sizes) == {rate * 2 * 60 // 1000}
    assert bytes(output.played["item_a1"]) == said
    assert np.frombuffer(said, "<i2").any()
