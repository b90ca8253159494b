"""The Voice Live backend behind the real /ws, with the emulator as ACS and its media client as
the caller, the app opening the backend through its lifespan as in production. Barge-in, drops,
fatal errors and transcripts through /ws run for every service in
tests/backends/realtime/test_end_to_end.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from app.backends.catalog import BACKENDS, backend_factory
from app.backends.voicelive import create_voicelive_backend
from app.emulator import AcsEmulator
from app.emulator.media_client import tone
from tests.backends.realtime.conftest import backend_settings
from tests.backends.realtime.fake_server import FakeRealtime, model_tone
from tests.backends.realtime.test_end_to_end import realtime_call, rms
from tests.conftest import (
    AppFactory,
    LiveApp,
    StreamFactory,
    answered_call,
    call_state,
    media_client,
)


async def wait_transcript(live: LiveApp, call_id: str, lines: int) -> dict[str, Any]:
    async with asyncio.timeout(5):
        while True:
            record: dict[str, Any] = (await live.client.get(f"/api/calls/{call_id}")).json()
            if len(record["transcript"]) >= lines:
                return record
            await asyncio.sleep(0.02)


def test_voice_live_is_a_backend_name() -> None:
    assert "voice-live" in BACKENDS
    assert backend_factory("voice-live") is create_voicelive_backend


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_audio_round_trips_at_the_calls_rate_untouched(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeRealtime, rate: int
) -> None:
    answer = model_tone(1000, rate=rate)
    async with realtime_call(start_app, open_stream, fake, sample_rate=rate) as (
        _,
        stream,
        session,
    ):
        await session.wait_for(lambda s: len(s.append_sizes) >= 4)
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", answer)
        await stream.wait_for(lambda s: len(s.audio_received) >= 20)
        frames = stream.audio_received
    assert set(session.append_sizes) == {rate * 2 * 20 // 1000}  # one append per frame
    sent = tone(rate, 1.0)  # what realtime_call's caller says, looped
    appended = bytes(session.appended)
    assert appended == (sent * 2)[: len(appended)]  # the caller's frames, not resampled
    played = b"".join(frame.pcm for frame in frames[:20])
    assert played == answer[: len(played)]  # the model's audio, not resampled


async def test_an_answered_call_greets_and_keeps_both_sides_transcripts(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeRealtime
) -> None:
    settings = backend_settings(fake, realtime_greeting="Welcome the caller to Contoso.")
    async with start_app(**settings) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        session = await fake.session()
        greeting = await session.wait_for_event("response.create")
        await session.caller_said("item_c1", "Do you have parking?")
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(300, rate=16000))
        await session.finish_response("resp_1", "item_a1", "Yes, behind the shop.")
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        record = await wait_transcript(live, call_id, lines=2)
    assert greeting["response"]["instructions"].endswith("Welcome the caller to Contoso.")
    assert rms(bytes(session.appended)) > 100  # the bundled speech reached the model
    assert [(line["role"], line["text"]) for line in record["transcript"]] == [
        ("caller", "Do you have parking?"),
        ("agent", "Yes, behind the shop."),
    ]
