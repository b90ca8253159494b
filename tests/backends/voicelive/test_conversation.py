"""The conversation over Voice Live's dialect: barge-in, transcripts, tools, drops, faults."""

from __future__ import annotations

import asyncio
import json

from app.agent.tools import load_tool_config
from app.backends.base import TranscriptIn
from app.backends.voicelive import RENEW_AFTER_S, create_voicelive_backend
from app.settings import Settings
from tests.backends.realtime.conftest import FakeActions, FakeOutput
from tests.backends.realtime.fake_server import FakeRealtime, FakeSession, model_tone
from tests.backends.voicelive.conftest import VoiceLiveBackend, voicelive_settings

RATE = 16000
BYTES_PER_MS = RATE * 2 // 1000


async def speaking(session: FakeSession, output: FakeOutput, ms: int) -> None:
    """The model is mid-response: `ms` of 16 kHz audio generated and handed to the call."""
    await session.wait_for_event("session.update")
    await session.start_response("resp_1")
    await session.audio("resp_1", "item_a1", model_tone(ms, rate=RATE))
    await output.wait_for(lambda o: len(o.played["item_a1"]) == ms * BYTES_PER_MS)


async def test_barge_in_stops_the_audio_first_then_cancels_and_truncates_to_what_was_heard(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    output = FakeOutput(heard=lambda item: 420.9)
    async with open_voicelive(output=output):
        session = await fake.session()
        await speaking(session, output, 1000)
        await session.speech_started()
        truncate = await session.wait_for_event("conversation.item.truncate")
        await asyncio.sleep(0.05)
    assert output.log[-1] == ("stop", None)
    assert session.of_type("response.cancel")[0]["response_id"] == "resp_1"
    assert (truncate["item_id"], truncate["audio_end_ms"]) == ("item_a1", 420)
    assert output.reported("error") == []  # the fake found the truncate within the audio


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


async def test_both_sides_transcripts_are_reported_with_barge_ins_marked(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    output = FakeOutput(heard=lambda item: 200.0)
    async with open_voicelive(output=output):
        session = await fake.session()
        await session.caller_said("item_c1", "What are your opening hours?")
        await speaking(session, output, 800)
        await session.speech_started()
        await session.wait_for_event("conversation.item.truncate")
        await session.finish_response("resp_1", "item_a1", "We open at nine and close at")
        await output.wait_for(lambda o: len(o.reported("transcript")) == 2)
    assert output.reported("transcript") == [
        {"role": "caller", "text": "What are your opening hours?"},
        {"role": "agent", "text": "We open at nine and close at", "interrupted": True},
    ]


async def test_the_model_transfers_the_call_to_a_configured_target_only(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    settings = Settings(_env_file=None, transfer_targets={"billing": "+14255550199"})
    actions = FakeActions()
    async with open_voicelive(tools=load_tool_config(settings, {}), actions=actions) as (_, out):
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        await session.start_response("resp_1")
        first = await session.function_call(
            "resp_1", "call_1", "transfer_call", json.dumps({"destination": "+19995550100"})
        )
        second = await session.function_call(
            "resp_1", "call_2", "transfer_call", json.dumps({"destination": "billing"})
        )
        await session.end_response("resp_1", [first, second])
        await session.wait_for(lambda s: len(s.function_outputs()) == 2)
        await session.wait_for_event("response.create")
    names = [tool["name"] for tool in update["session"]["tools"]]
    assert names == ["end_call", "transfer_call"]
    assert actions.calls == [("transfer", "billing")]  # the arbitrary number is never dialled
    outputs = {key: json.loads(value) for key, value in session.function_outputs().items()}
    assert "is not one of" in outputs["call_1"]["error"]
    assert outputs["call_2"]["ok"] is True
    assert [event["name"] for event in out.reported("tool_call")] == ["transfer_call"] * 2


async def test_a_dropped_socket_reconnects_and_replays_the_conversation_in_its_dialect(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive() as (_, output):
        first = await fake.session()
        await first.wait_for_event("session.update")
        await first.caller_said("item_c1", "Is the shop open on Sunday?")
        await first.start_response("resp_1")
        await first.audio("resp_1", "item_a1", model_tone(100, rate=RATE))
        await first.finish_response("resp_1", "item_a1", "Yes, from ten to four.")
        await output.wait_for(lambda o: len(o.reported("transcript")) == 2)
        await first.drop()
        second = await fake.session(1)
        await second.wait_for(lambda s: len(s.of_type("conversation.item.create")) == 2)
    assert second.received[0] == first.received[0]  # the same session.update
    assert [event["item"] for event in second.of_type("conversation.item.create")] == [
        {
            "type": "message",
            "role": "user",
            "content": [{"type": "input_text", "text": "Is the shop open on Sunday?"}],
        },
        {
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": "Yes, from ten to four."}],
        },
    ]
    assert output.reported("reconnect")[0]["backend"] == "voice-live"
    assert output.ended == []


async def test_a_fatal_error_event_is_reported_and_ends_the_media_session(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive() as (_, output):
        session = await fake.session()
        await session.error("deployment_not_found", "The model gpt-nope does not exist.")
        await output.wait_for(lambda o: len(o.ended) == 1)
    assert output.reported("error") == [
        {
            "backend": "voice-live",
            "message": "deployment_not_found: The model gpt-nope does not exist.",
            "fatal": True,
        }
    ]
    assert len(fake.sessions) == 1  # no reconnect can fix it


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


async def test_the_session_is_renewed_between_turns_with_the_conversation_replayed(
    fake: FakeRealtime, open_voicelive: VoiceLiveBackend
) -> None:
    async with open_voicelive(renew_after_s=0.3) as (_, output):
        first = await fake.session()
        await first.wait_for_event("session.update")
        await first.caller_said("item_c1", "Can I change my booking?")
        second = await fake.session(1)
        replayed = await second.wait_for_event("conversation.item.create")
        await first.wait_for(lambda s: s.closed)
    assert second.received[0] == first.received[0]
    assert replayed["item"]["content"][0]["text"] == "Can I change my booking?"
    assert output.reported("reconnect") == []  # a renewal is not a fault


def test_production_backends_renew_well_before_a_half_hour(fake: FakeRealtime) -> None:
    backend = create_voicelive_backend(voicelive_settings(fake))
    assert backend.name == "voice-live"
    assert RENEW_AFTER_S < 30 * 60


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
