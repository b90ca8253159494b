"""The Realtime backend against the fake service: session setup, audio both ways, visibility."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

from app.backends.base import AudioIn, TranscriptIn
from tests.backends.realtime.conftest import OpenBackend, call_context
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, model_tone


async def test_session_update_is_the_first_message_and_carries_the_settings(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(
        realtime_instructions="Be brief.",
        realtime_voice="marin",
        realtime_vad_threshold=0.7,
        realtime_vad_silence_duration_ms=350,
        realtime_transcription_model="gpt-4o-transcribe",
    ):
        session = await fake.session()
        update = await session.wait_for_event("session.update")
    assert session.received[0] is update
    assert update["session"] == {
        "type": "realtime",
        "output_modalities": ["audio"],
        "instructions": "Be brief.",
        "audio": {
            "input": {
                "format": {"type": "audio/pcm", "rate": 24000},
                "turn_detection": {
                    "type": "server_vad",
                    "threshold": 0.7,
                    "prefix_padding_ms": 300,
                    "silence_duration_ms": 350,
                    "create_response": True,
                    "interrupt_response": True,
                },
                "transcription": {"model": "gpt-4o-transcribe"},
            },
            "output": {"format": {"type": "audio/pcm", "rate": 24000}, "voice": "marin"},
        },
    }
    assert fake.handshakes[0].path == "/v1/realtime?model=gpt-realtime"
    assert fake.handshakes[0].headers["Authorization"] == "Bearer sk-test-key"


async def test_instructions_file_wins_over_instructions(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    path = tmp_path / "persona.txt"
    path.write_text("You are the Contoso front desk.\n", encoding="utf-8")
    async with open_backend(realtime_instructions="ignored", realtime_instructions_file=path):
        update = await (await fake.session()).wait_for_event("session.update")
    assert update["session"]["instructions"] == "You are the Contoso front desk."


async def test_greeting_asks_the_model_to_speak_first_once(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(realtime_greeting="Say hello and offer help.") as (_, output):
        first = await fake.session()
        greeting = await first.wait_for_event("response.create")
        await first.drop()
        second = await fake.session(1)
        await second.wait_for_event("session.update")
        await asyncio.sleep(0.05)
    assert greeting["response"]["instructions"].endswith("Say hello and offer help.")
    assert second.of_type("response.create") == []
    assert output.ended == []


async def test_a_call_served_before_starts_with_its_conversation_and_no_second_greeting(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    history = (("agent", "Hello, how can I help?"), ("caller", "My order is late."))
    call = dataclasses.replace(call_context(), history=history)
    async with open_backend(realtime_greeting="Say hello.", call=call):
        session = await fake.session()
        await session.wait_for_event("conversation.item.create", count=2)
        await asyncio.sleep(0.05)
    items = [e["item"] for e in session.of_type("conversation.item.create")]
    assert [(i["role"], i["content"][0]["text"]) for i in items] == [
        ("assistant", "Hello, how can I help?"),
        ("user", "My order is late."),
    ]
    assert session.of_type("response.create") == []  # not greeted again


async def test_model_audio_is_played_with_its_item_as_playback_id(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    audio = model_tone(500)
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a", audio)
        await session.finish_response("resp_1", "item_a", "Hello there.")
        await output.wait_for(lambda o: len(o.played["item_a"]) == len(audio))
    assert bytes(output.played["item_a"]) == audio
    assert ("stop", None) not in output.log


async def test_caller_audio_goes_out_in_appends_of_append_ms(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    frame = model_tone(20)
    async with open_backend(realtime_append_ms=60) as (backend, _):
        session = await fake.session()
        await session.wait_for_event("session.update")
        for index in range(30):
            await backend.receive(AudioIn(frame, timestamp=str(index)))
        await session.wait_for(lambda s: len(s.append_sizes) == 10)
    assert session.append_sizes == [60 * BYTES_PER_MS] * 10
    assert bytes(session.appended) == frame * 30


async def test_empty_silent_frames_still_advance_the_models_clock(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(realtime_append_ms=40) as (backend, _):
        session = await fake.session()
        for _ in range(4):
            await backend.receive(AudioIn(b"", silent=True))
        await session.wait_for(lambda s: len(s.append_sizes) == 2)
    assert bytes(session.appended) == bytes(80 * BYTES_PER_MS)


async def test_audio_before_the_socket_opens_is_sent_after_the_session_update(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(realtime_append_ms=20) as (backend, _):
        # No await between open and these frames: the connection cannot be up yet.
        for index in range(5):
            await backend.receive(AudioIn(bytes([index]) * 960))
        session = await fake.session()
        await session.wait_for(lambda s: len(s.append_sizes) == 5)
    assert session.received[0]["type"] == "session.update"
    assert bytes(session.appended) == b"".join(bytes([i]) * 960 for i in range(5))


async def test_transcripts_of_both_sides_are_reported(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.caller_said("item_c1", "  What time do you open? ")
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(100))
        await session.finish_response("resp_1", "item_a1", "We open at nine.")
        await output.wait_for(lambda o: len(o.reported("transcript")) == 2)
    assert output.reported("transcript") == [
        {"role": "caller", "text": "What time do you open?"},
        {"role": "agent", "text": "We open at nine."},
    ]


async def test_turn_latency_runs_from_speech_stopped_to_the_first_audio_played(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.speech_started()
        await session.speech_stopped()
        await asyncio.sleep(0.05)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(300))
        await output.wait_for(lambda o: len(o.played["item_a1"]) == 300 * BYTES_PER_MS)
    latencies = output.reported("turn_latency")
    assert len(latencies) == 1  # later deltas of the same turn are not turns
    assert latencies[0]["ms"] > 0


async def test_turn_detection_none_lets_acs_transcription_end_the_callers_turn(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend(realtime_turn_detection="none") as (backend, _):
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        await backend.receive(TranscriptIn("what are your", final=False))
        await backend.receive(TranscriptIn("what are your hours", final=True))
        await session.wait_for_event("response.create")
    assert update["session"]["audio"]["input"]["turn_detection"] is None
    kinds = [event["type"] for event in session.received]
    assert kinds[-2:] == ["input_audio_buffer.commit", "response.create"]


async def test_close_is_idempotent_and_leaves_no_tasks(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (backend, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(200))
        await output.wait_for(lambda o: len(o.played["item_a1"]) > 0)
        await backend.close()
        await backend.close()
    await session.wait_for(lambda s: s.closed)
    assert [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("realtime")] == []
