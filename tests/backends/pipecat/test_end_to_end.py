"""The Pipecat backend behind the real /ws: the emulator's media client as the caller, the real
Azure SDK for call control, a real pipeline of the test's own bots."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from tests.backends.pipecat import bots
from tests.conftest import AppFactory, StreamFactory, answered_call, call_state, media_client

BOTS = "tests.backends.pipecat.bots"


def rms(pcm: bytes) -> float:
    samples = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def settings(bot: str, **overrides: Any) -> dict[str, Any]:
    return {"media_backend": "pipecat", "pipecat_bot": f"{BOTS}:{bot}", **overrides}


async def record(live: Any, call_id: str) -> dict[str, Any]:
    response = await live.client.get(f"/api/calls/{call_id}")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


async def wait_disconnected(live: Any, call_id: str) -> dict[str, Any]:
    async with asyncio.timeout(10):
        while True:
            body = await record(live, call_id)
            if not body["media"]["connected"]:
                return body
            await asyncio.sleep(0.02)


@pytest.mark.parametrize("rate", [16000, 24000])
async def test_the_echo_bot_plays_the_caller_back_at_the_calls_rate(
    start_app: AppFactory, open_stream: StreamFactory, rate: int
) -> None:
    async with (
        start_app(**settings("echo_bot")) as live,
        open_stream(live, sample_rate=rate, script=StreamScript(audio=tone(rate, 1.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 25)
        frames = stream.audio_received
    assert {len(frame.pcm) for frame in frames} == {rate * 2 // 50}
    assert rms(b"".join(frame.pcm for frame in frames[5:25])) > 3000  # the 0.3 tone, ~6950


async def test_a_key_pressed_reaches_the_bot_and_its_dtmf_reaches_acs(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(**settings("echo_bot", media_dtmf=True)) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 5)
        await stream.send_raw('{"kind": "DtmfData", "dtmfData": {"data": "7"}}')
        await emulator.wait_for(
            lambda: any(r.path.endswith(f"{call_id}:sendDtmfTones") for r in emulator.requests)
        )
    [dtmf] = [r for r in emulator.requests if r.path.endswith(":sendDtmfTones")]
    assert dtmf.body["tones"] == ["seven"]


async def test_an_interruption_stops_the_calls_audio_before_any_further_audio(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with (
        start_app(**settings("interrupting_bot", media_dtmf=True)) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 0.2, amplitude=0.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 25)
        await stream.send_raw('{"kind": "DtmfData", "dtmfData": {"data": "5"}}')
        await stream.wait_for(lambda s: any(r.kind == "stop" for r in s.received))
        await stream.wait_for(lambda s: len(s.received) >= _stop(s.received) + 20)
        received = list(stream.received)
    stop = _stop(received)
    before, after = received[:stop], received[stop + 1 :]
    assert rms(b"".join(r.pcm for r in before[5:])) > 5000  # the loud greeting (0.5: ~11500)
    assert after
    assert all(r.kind == "audio" for r in after)
    assert rms(b"".join(r.pcm for r in after)) < 1000  # only the quiet answer (0.02: ~460)
    assert len(before) < 150  # the 3 s greeting was cut short


def _stop(received: list[Any]) -> int:
    return next(index for index, r in enumerate(received) if r.kind == "stop")


async def test_a_bot_that_ends_its_pipeline_hangs_up_after_the_goodbye(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(**settings("goodbye_bot")) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await emulator.wait_for(
            lambda: any(r.path.endswith(f"{call_id}:terminate") for r in emulator.requests)
        )
        heard = len(stream.audio_received)
        await call_state(live, call_id, connection_state="disconnected")
    assert heard >= 49  # the whole second of goodbye (50 frames, the last one padded)
    assert rms(b"".join(r.pcm for r in stream.audio_received[5:45])) > 3000


async def test_the_caller_hanging_up_cancels_a_bot_that_runs_on_and_leaves_no_task(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with start_app(**settings("stubborn_bot", media_resume_window_s=0)) as live:
        async with open_stream(live, call_connection_id="call-stubborn") as stream:
            await stream.wait_for(lambda s: s.frames_sent >= 10)
        await wait_disconnected(live, "call-stubborn")
        await asyncio.sleep(0.1)
        left = [task for task in asyncio.all_tasks() if _is_pipecat(task)]
    assert bots.disconnected.count("call-stubborn") == 1
    assert left == []


def _is_pipecat(task: asyncio.Task[Any]) -> bool:
    """A task of Pipecat's, of the bot's or of the Pipecat backend's (not yet finished)."""
    if task.done() or task is asyncio.current_task():
        return False
    code = getattr(task.get_coro(), "cr_code", None)
    where = code.co_filename if code is not None else ""
    mine = ("site-packages/pipecat/", "app/backends/pipecat/", "tests/backends/pipecat/")
    return any(part in where for part in mine) or task.get_name().startswith("pipecat-")


async def test_a_bot_that_raises_ends_the_media_and_is_reported_on_the_call(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with (
        start_app(**settings("raising_bot")) as live,
        open_stream(live, call_connection_id="call-raising") as stream,
    ):
        await stream.wait_closed()
        body = await wait_disconnected(live, "call-raising")
    assert stream.close_code == 1011
    assert "the bot broke" in body["media"]["close_reason"]


async def test_a_bot_file_of_ones_own_serves_the_call(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    bot = Path(__file__).resolve().parents[3] / "examples" / "pipecat" / "echo_bot.py"
    async with (
        start_app(media_backend="pipecat", pipecat_bot=f"{bot}:run_bot") as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        await stream.wait_for(lambda s: len(s.audio_received) >= 25)
        frames = stream.audio_received
    assert rms(b"".join(frame.pcm for frame in frames[5:25])) > 3000


async def test_a_re_established_stream_keeps_the_same_pipeline(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(**settings("echo_bot", media_resume_window_s=5)) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 10)
        stream.drop()
        await stream.wait_for(lambda s: s.connections == 2)
        await stream.wait_for(lambda s: sum(1 for r in s.audio_received if r.connection == 1) >= 25)
        resumed = [r for r in stream.audio_received if r.connection == 1]
    assert bots.started.count(call_id) == 1  # the same bot, not a second one
    assert rms(b"".join(r.pcm for r in resumed[5:25])) > 300  # the speech, echoed
