"""What is Voice Live's own in the conversation: 16 kHz accounting, its extra events, turns from
ACS. Barge-in, tools, drops and faults run for every Realtime service in
tests/backends/realtime (`SERVICES`)."""

from __future__ import annotations

from app.backends.base import TranscriptIn
from tests.backends.realtime.conftest import FakeOutput
from tests.backends.realtime.fake_server import FakeRealtime, FakeSession, model_tone
from tests.backends.voicelive.conftest import VoiceLiveBackend

RATE = 16000
BYTES_PER_MS = RATE * 2 // 1000


async def speaking(session: FakeSession, output: FakeOutput, ms: int) -> None:
    """The model is mid-response: `ms` of 16 kHz audio generated and handed to the call."""
    await session.wait_for_event("session.update")
    await session.start_response("resp_1")
    await session.audio("resp_1", "item_a1", model_tone(ms, rate=RATE))
    await output.wait_for(lambda o: len(o.played["item_a1"]) == ms * BYTES_PER_MS)


async def test_a_truncate_never_goes_past_the_audio_generated_at_the_calls_rate(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    output = FakeOutput(heard=lambda item: 10_000.0)
    async with open_voicelive(output=output):
        session = await fake.session()
        await speaking(session, output, 600)
        await session.speech_started()
        truncate = await session.wait_for_event("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 600  # 16 kHz bytes counted as 16 kHz milliseconds


async def test_events_without_a_ga_counterpart_and_non_json_are_skipped(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive() as (_, output):
        session = await fake.session()
        await session.wait_for_event("session.update")
        await session.send({"type": "response.animation_viseme.delta", "viseme_id": 3})
        await session.send({"type": "warning", "warning": {"message": "voice is deprecated"}})
        await session.connection.send("not json {")
        await session.caller_said("item_c1", "Hello?")
        await output.wait_for(lambda o: len(o.reported("transcript")) == 1)
    assert output.ended == []
    assert len(fake.sessions) == 1


async def test_without_turn_detection_acs_transcription_drives_the_turns(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive(azure_voicelive_turn_detection="none") as (backend, output):
        session = await fake.session()
        await speaking(session, output, 400)
        await backend.receive(TranscriptIn("I want to", final=False))
        await session.wait_for_event("response.cancel")
        await backend.receive(TranscriptIn("I want to speak to someone.", final=True))
        await session.wait_for_event("response.create")
    assert session.kinds()[-2:] == ["input_audio_buffer.commit", "response.create"]
    assert ("stop", None) in output.log
