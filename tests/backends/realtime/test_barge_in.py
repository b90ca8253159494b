"""Barge-in: the caller talks over the model."""

from __future__ import annotations

import asyncio

from tests.backends.realtime.conftest import SERVICES, FakeOutput, OpenBackend
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, FakeSession, model_tone

pytestmark = SERVICES  # the same behaviour from every Realtime service


async def _speaking(session: FakeSession, output: FakeOutput, ms: int = 1000) -> None:
    """The model is mid-response: `ms` of audio generated and handed to the call."""
    await session.start_response("resp_1")
    await session.audio("resp_1", "item_a1", model_tone(ms))
    await output.wait_for(lambda o: len(o.played["item_a1"]) == ms * BYTES_PER_MS)


async def test_barge_in_stops_audio_cancels_and_truncates_to_what_was_heard(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 320.7)
    async with open_backend(output=output):
        session = await fake.session()
        await _speaking(session, output)
        await session.speech_started()
        truncate = await session.wait_for_event("conversation.item.truncate")
        cancel = session.of_type("response.cancel")
        await asyncio.sleep(0.05)
    assert output.log[-1] == ("stop", None)
    assert cancel[0]["response_id"] == "resp_1"
    assert truncate["item_id"] == "item_a1"
    assert truncate["content_index"] == 0
    assert truncate["audio_end_ms"] == 320
    assert output.reported("error") == []  # the fake accepted the truncate: no error either


async def test_late_deltas_of_the_interrupted_response_are_dropped(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 200.0)
    async with open_backend(output=output) as (backend, _):
        session = await fake.session()
        await _speaking(session, output, ms=400)
        await session.speech_started()
        await session.wait_for_event("conversation.item.truncate")
        await session.audio("resp_1", "item_a1", model_tone(300))  # already in flight
        await session.start_response("resp_2")
        await session.audio("resp_2", "item_a2", model_tone(100))
        await output.wait_for(lambda o: len(o.played["item_a2"]) > 0)
    stop = output.log.index(("stop", None))
    assert ("play", "item_a1") not in output.log[stop:]
    assert len(output.played["item_a1"]) == 400 * BYTES_PER_MS
    assert backend.dropped_deltas == 3


async def test_truncate_is_clamped_to_the_audio_generated_for_the_item(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    # The caller cannot have heard more than was generated (clock skew, estimation error).
    output = FakeOutput(heard=lambda item: 10_000.0)
    async with open_backend(output=output):
        session = await fake.session()
        await _speaking(session, output, ms=600)
        await session.speech_started()
        truncate = await session.wait_for_event("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 600


async def test_nothing_heard_means_no_truncate_but_still_a_cancel(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 0.0)
    async with open_backend(output=output):
        session = await fake.session()
        await _speaking(session, output, ms=300)
        await session.speech_started()
        await session.wait_for_event("response.cancel")
        await asyncio.sleep(0.05)
    assert session.of_type("conversation.item.truncate") == []
    assert ("stop", None) in output.log


async def test_speech_while_the_model_is_silent_interrupts_nothing(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await _speaking(session, output, ms=200)
        await session.finish_response("resp_1", "item_a1", "Done.")
        await asyncio.sleep(0.02)
        await session.speech_started()  # everything played was heard: the model is quiet
        await session.speech_stopped()
        await asyncio.sleep(0.05)
    assert ("stop", None) not in output.log
    assert session.of_type("response.cancel") == []
    assert session.of_type("conversation.item.truncate") == []


async def test_audio_still_playing_after_the_response_is_done_is_stopped_and_truncated(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 250.0)
    async with open_backend(output=output):
        session = await fake.session()
        await _speaking(session, output, ms=800)
        await session.finish_response("resp_1", "item_a1", "A long answer.")
        await asyncio.sleep(0.02)
        await session.speech_started()
        truncate = await session.wait_for_event("conversation.item.truncate")
    assert truncate["audio_end_ms"] == 250
    assert session.of_type("response.cancel") == []  # nothing in flight to cancel
    assert ("stop", None) in output.log


async def test_cancel_race_with_the_services_own_vad_is_not_an_error(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 100.0)
    async with open_backend(output=output):
        session = await fake.session()
        await _speaking(session, output, ms=300)
        # The service's interrupt_response already ended the response when speech started.
        session.active_response = None
        await session.speech_started()
        await session.wait_for_event("response.cancel")
        await session.wait_for_event("conversation.item.truncate")
        await session.error("conversation_already_has_active_response")
        await asyncio.sleep(0.05)
    assert output.reported("error") == []
    assert output.ended == []


async def test_a_play_waiting_for_buffer_space_never_lands_after_stop_audio(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 100.0)
    output.gate = asyncio.Event()  # the call's outbound buffer is full
    async with open_backend(output=output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(500))
        await asyncio.sleep(0.05)
        await session.speech_started()  # read at once although play() is stuck
        await session.wait_for_event("response.cancel")
        output.gate.set()  # space again: nothing of resp_1 may be queued now
        await session.start_response("resp_2")
        await session.audio("resp_2", "item_a2", model_tone(100))
        await output.wait_for(lambda o: len(o.played["item_a2"]) > 0)
    assert output.log[0] == ("stop", None)
    assert ("play", "item_a1") not in output.log


async def test_both_sides_transcripts_are_reported_with_barge_ins_marked(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    output = FakeOutput(heard=lambda item: 200.0)
    async with open_backend(output=output):
        session = await fake.session()
        await session.caller_said("item_c1", "What are your opening hours?")
        await _speaking(session, output, ms=800)
        await session.speech_started()
        await session.wait_for_event("conversation.item.truncate")
        await session.finish_response("resp_1", "item_a1", "We open at nine and close at")
        await output.wait_for(lambda o: len(o.reported("transcript")) == 2)
    assert output.reported("transcript") == [
        {"role": "caller", "text": "What are your opening hours?"},
        {"role": "agent", "text": "We open at nine and close at", "interrupted": True},
    ]
