"""The conversation over Voice Live's dialect: barge-in, transcripts, tools, drops, faults."""

from __future__ import annotations

import asyncio
import json

from app.agent.tools import load_tool_config
from app.settings import Settings
from tests.backends.realtime.conftest import FakeActions, FakeOutput
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
