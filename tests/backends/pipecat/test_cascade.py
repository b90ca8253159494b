"""The bundled cascade (PIPECAT_BOT unset) end to end: the project's speech recording as the
caller, so Silero really hears it; local fake OpenAI-compatible transcription, chat and speech."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from typing import Any

import numpy as np
import pytest

from app.backends.base import CallEventIn
from app.backends.pipecat import create_pipecat_backend
from app.emulator.media_client import MediaStream, StreamScript, bundled_speech
from app.settings import Settings
from tests.backends.pipecat.fake_openai import FakeOpenAI, Reply, fake_openai
from tests.backends.pipecat.test_end_to_end import record, rms, wait_disconnected
from tests.backends.realtime.conftest import FakeActions, FakeOutput, call_context
from tests.conftest import AppFactory, LiveApp, StreamFactory

# The heaviest end-to-end tests: CI runs them; `./scripts/test -m "not slow"` skips them.
pytestmark = pytest.mark.slow

SPOKEN_S = (0.72, 3.14)  # seconds into the recording
QUESTION = "What time do you open tomorrow?"
ANSWER = "We open at nine."
# One sentence of about six seconds from the fake's speech (40 ms a character).
GREETING = (
    "Hello and welcome to Contoso where we are always happy to help you with anything at "
    "all that you might need today including your bookings and your bills"
)


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with fake_openai() as server:
        yield server


def cascade(fake: FakeOpenAI, **overrides: Any) -> dict[str, Any]:
    return {
        "media_backend": "pipecat",
        "openai_api_key": "sk-test",
        "openai_base_url": fake.base_url,
        "media_idle_timeout_s": 30,
        **overrides,
    }


def caller(rate: int, silence_s: float) -> StreamScript:
    """Silence, then 2.4 s of the recording with no pause longer than 60 ms in it, then
    silence: one utterance, so one turn however the turn detection judges the pauses."""
    start, end = (int(rate * at) * 2 for at in SPOKEN_S)
    audio = bytes(int(rate * silence_s) * 2) + bundled_speech(rate)[start:end]
    return StreamScript(audio=audio, loop=False, silent_after_audio=True)


async def lines(live: LiveApp, call_id: str, count: int) -> list[dict[str, Any]]:
    """The call's transcript once it has `count` lines (it is written behind)."""
    async with asyncio.timeout(10):
        while True:
            transcript: list[dict[str, Any]] = (await record(live, call_id))["transcript"]
            if len(transcript) >= count:
                return transcript
            await asyncio.sleep(0.05)


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_a_full_turn_caller_speech_to_the_agents_answer(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeOpenAI, rate: int
) -> None:
    fake.transcripts.append(QUESTION)
    fake.replies.append(Reply(ANSWER))
    call_id = f"call-cascade-{rate}"
    async with (
        start_app(**cascade(fake)) as live,
        open_stream(
            live, sample_rate=rate, script=caller(rate, 0.5), call_connection_id=call_id
        ) as stream,
    ):
        await fake.wait_for(lambda f: ANSWER in f.speeches, timeout=20)
        await stream.wait_for(lambda s: _loud_frames(s) >= 10, timeout=5)
        transcript = await lines(live, call_id, 2)
        await stream.close()
        body = await wait_disconnected(live, call_id)
    user_turn = [m for m in fake.chats[0]["messages"] if m["role"] == "user"]
    assert QUESTION in user_turn[-1]["content"]
    assert [(line["role"], line["text"]) for line in transcript[:2]] == [
        ("caller", QUESTION),
        ("agent", ANSWER),
    ]
    assert body["metrics"]["turns"] >= 1
    assert body["metrics"]["turn_latency_ms_last"] > 0


async def test_the_caller_barges_in_on_the_greeting(
    start_app: AppFactory, open_stream: StreamFactory, fake: FakeOpenAI
) -> None:
    fake.replies.append(Reply(GREETING))
    fake.transcripts.append(QUESTION)
    call_id = "call-cascade-barge-in"
    settings = cascade(fake, realtime_greeting="Welcome the caller to Contoso.")
    async with (
        start_app(**settings) as live,
        open_stream(live, script=caller(16000, 1.5), call_connection_id=call_id) as stream,
    ):
        await stream.wait_for(lambda s: any(r.kind == "stop" for r in s.received), timeout=10)
        transcript = await lines(live, call_id, 1)
        received = list(stream.received)
    stop = next(index for index, r in enumerate(received) if r.kind == "stop")
    greeting_frames = len(GREETING) * 40 // 20
    assert 10 < stop < greeting_frames // 2  # the greeting played, then was cut short
    assert rms(b"".join(r.pcm for r in received[stop - 10 : stop])) > 1000
    assert transcript[0]["role"] == "agent"
    assert transcript[0]["interrupted"] is True
    assert GREETING.startswith(transcript[0]["text"])
    assert fake.chats[0]["messages"][-1]["content"].endswith("Welcome the caller to Contoso.")


def _loud_frames(stream: MediaStream) -> int:
    return sum(1 for r in stream.audio_received if _rms(r.pcm) > 1000)


def _rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


async def test_a_call_continued_elsewhere_starts_from_its_history_without_a_second_greeting(
    fake: FakeOpenAI,
) -> None:
    history = (("agent", "Hello, how can I help?"), ("caller", "My order is late."))
    call = dataclasses.replace(call_context(16000), history=history)
    settings = Settings(_env_file=None, **cascade(fake, realtime_greeting="Say hello."))
    backend = create_pipecat_backend(settings)
    output = FakeOutput()
    await backend.open(call, output, FakeActions())
    try:
        await output.wait_for(lambda o: bool(o.reported("connected")))
        # Something for the model to answer, so it shows the context it starts from.
        await backend.receive(CallEventIn("CallTransferFailed", {"message": "busy"}))
        await fake.wait_for(lambda f: len(f.chats) >= 1)
    finally:
        await backend.close()
    messages = [(m["role"], m["content"]) for m in fake.chats[0]["messages"]]
    assert messages[0][0] == "system"  # REALTIME_INSTRUCTIONS, the LLM's system instruction
    assert messages[1:3] == [
        ("assistant", "Hello, how can I help?"),
        ("user", "My order is late."),
    ]
    assert not any("Say hello." in str(content) for _, content in messages)
    assert len(fake.chats) == 1
