"""A response's audio ends: its playback is flushed, so it plays in full and is known to be over."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest

from app.emulator.media_client import MediaStream
from tests.backends.realtime.conftest import OpenBackend
from tests.backends.realtime.fake_server import FakeRealtime, FakeSession, model_tone
from tests.backends.realtime.test_end_to_end import realtime_call, rms
from tests.conftest import AppFactory, LiveApp, StreamFactory

# --- the backend asks the output to end each item's playback, once, after its audio ---------


async def test_an_items_playback_ends_after_its_last_delta(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(300))
        await session.audio_done("resp_1", "item_a1")
        await session.finish_response("resp_1", "item_a1", "Hello.")
        await output.wait_for(lambda o: bool(o.ended_playbacks()))
        await asyncio.sleep(0.05)
    assert output.log == [("play", "item_a1")] * 3 + [("end", "item_a1")]


async def test_response_done_ends_an_item_the_service_sent_no_audio_done_for(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(200))
        await session.audio("resp_1", "item_a2", model_tone(200))
        await session.finish_response("resp_1", "item_a2", "Hello.")
        await output.wait_for(lambda o: len(o.ended_playbacks()) == 2)
    assert output.log[-2:] == [("end", "item_a1"), ("end", "item_a2")]


async def test_an_interrupted_items_playback_is_not_ended(
    fake: FakeRealtime, open_backend: OpenBackend
) -> None:
    async with open_backend() as (_, output):
        output.heard = lambda item_id: 100.0  # the caller has heard only the start
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(1000))
        await output.wait_for(lambda o: ("play", "item_a1") in o.log)
        await session.speech_started()
        await session.wait_for_event("conversation.item.truncate")
        await session.audio_done("resp_1", "item_a1")
        await session.caller_said("item_c1", "Wait.")  # handled after the audio's end
        await output.wait_for(lambda o: bool(o.reported("transcript")))
    assert ("stop", None) in output.log
    assert output.ended_playbacks() == []


# --- end to end on a 16 kHz call: the 24 -> 16 kHz resampler's tail is played ---------------


async def _respond(session: FakeSession, stream: MediaStream, answer: bytes) -> list[bytes]:
    """One response with `answer` as its audio; the frames the caller received for it."""
    await session.start_response("resp_1")
    await session.audio("resp_1", "item_a1", answer)
    await session.audio_done("resp_1", "item_a1")
    await session.finish_response("resp_1", "item_a1", "One second of tone.")
    await stream.wait_for(lambda s: len(s.audio_received) >= 50)
    await asyncio.sleep(0.2)  # long enough for a 51st frame, were there one
    return [frame.pcm for frame in stream.audio_received]


async def _transcript(live: LiveApp, call_id: str, text: str) -> list[Any]:
    """The call's transcript, once `text` is in it (the caller's turn was handled)."""
    async with asyncio.timeout(5):
        while True:
            response = await live.client.get(f"/api/calls/{call_id}")
            lines: list[Any] = response.json()["transcript"]
            if any(line["text"] == text for line in lines):
                return lines
            await asyncio.sleep(0.02)


async def test_a_one_second_response_plays_to_its_last_frame_at_16_khz(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    answer = model_tone(1000)
    async with realtime_call(start_app, open_stream, fake, sample_rate=16000) as (
        _,
        stream,
        session,
    ):
        frames = await _respond(session, stream, answer)
    assert len(frames) == 50
    assert {len(frame) for frame in frames} == {640}
    assert sum(len(frame) for frame in frames) == 16000 * 2  # 1 s: nothing held back, no padding
    # The last frame carries the response's last 20 ms, not a remainder padded with silence.
    last = np.frombuffer(frames[-1], dtype="<i2")
    assert rms(frames[-1][-128:]) == pytest.approx(rms(answer), rel=0.2)
    assert int(np.abs(last[-16:]).max()) > 1000


async def test_the_callers_next_turn_after_a_finished_response_interrupts_nothing(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime
) -> None:
    async with realtime_call(start_app, open_stream, fake, sample_rate=16000, call_id="call-q") as (
        live,
        stream,
        session,
    ):
        await _respond(session, stream, model_tone(1000))
        await asyncio.sleep(0.4)  # the 1 s has played out, and 0.5 s of quiet since
        await session.speech_started()
        await session.caller_said("item_c2", "And on Sunday?")
        await _transcript(live, "call-q", "And on Sunday?")
        received = list(stream.received)
    assert [r.kind for r in received].count("stop") == 0
    assert session.of_type("conversation.item.truncate") == []
    assert session.of_type("response.cancel") == []
