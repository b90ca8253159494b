"""The backend's outbound side: resampled to the call's rate; a barge-in leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np

from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import OutboundItem, StopAudio
from app.media.resample import resampler


def _loud(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2").tobytes()


def _output(pacer: OutboundPacer) -> SessionOutput:
    return SessionOutput(
        pacer, resampler(24000, 16000), enabled=True, on_event=lambda e: None, on_end=lambda r: None
    )


@contextlib.asynccontextmanager
async def _sent(pacer: OutboundPacer) -> AsyncIterator[list[OutboundItem]]:
    """What the pacer hands to the socket; a 1 s lead sends a short burst at once."""
    sent: list[OutboundItem] = []

    async def sink(item: OutboundItem) -> None:
        sent.append(item)

    task = asyncio.create_task(pacer.run(sink))
    await asyncio.sleep(0)  # run() registers the socket's send
    try:
        yield sent
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_after_stop_audio_no_interrupted_audio_leaks_into_the_next_playback() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    output = _output(pacer)
    async with _sent(pacer) as sent:
        await output.play(_loud(24000, 0.5), playback_id="interrupted")
        output.stop_audio()
        await output.play(bytes(24000 * 2 // 5), playback_id="next")  # 200 ms of silence
    stop = next(i for i, item in enumerate(sent) if isinstance(item, StopAudio))
    after = b"".join(item for item in sent[stop + 1 :] if isinstance(item, bytes))
    pcm = np.frombuffer(after, dtype="<i2")
    assert len(pcm) > 0
    assert int(np.abs(pcm).max()) <= 2  # rounding noise, not a tail of the 440 Hz tone


async def test_resampled_audio_keeps_its_duration() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    output = _output(pacer)
    async with _sent(pacer) as sent:
        for _ in range(10):
            await output.play(_loud(24000, 0.1))
        pacer.flush()  # the last partial frame, padded with silence
    played = sum(len(item) for item in sent if isinstance(item, bytes))
    # 1 s at 24 kHz -> about 1 s at 16 kHz (the filter holds back a few ms; padding adds < 1 frame)
    assert 16000 * 2 * 0.97 <= played <= 16000 * 2 + 640


def _frames(sent: list[OutboundItem]) -> list[bytes]:
    return [item for item in sent if isinstance(item, bytes)]


async def test_end_of_playback_plays_a_resampled_response_to_its_last_frame() -> None:
    now = [0.0]
    pacer = OutboundPacer(640, lead_ms=1000, clock=lambda: now[0])
    output = _output(pacer)
    response = _loud(24000, 1.0)
    async with _sent(pacer) as sent:
        for start in range(0, len(response), 4800):  # 100 ms deltas
            await output.play(response[start : start + 4800], playback_id="item")
        before_the_end = len(b"".join(_frames(sent)))
        await output.end_of_playback("item")
    frames = _frames(sent)
    # Every 100 ms in gave 100 ms out at once, held back by nothing but the filter's < 1 ms.
    assert before_the_end == 16000 * 2
    assert len(frames) == 50
    tail = np.frombuffer(frames[-1][-64:], dtype="<i2")
    assert int(np.abs(tail).max()) > 10000  # the tone to its end, not padding
    now[0] = 5.0
    assert output.heard_ms("item") == 1000.0


async def test_a_playback_after_an_ended_one_resamples_from_a_fresh_filter() -> None:
    pacer = OutboundPacer(640, lead_ms=3000)
    output = _output(pacer)
    async with _sent(pacer) as sent:
        for item in ("first", "second"):
            await output.play(_loud(24000, 1.0), playback_id=item)
            await output.end_of_playback(item)
    assert len(_frames(sent)) == 100


async def test_end_of_playback_without_a_resampler_pads_the_last_partial_frame_at_once() -> None:
    pacer = OutboundPacer(960, lead_ms=1000)
    output = SessionOutput(
        pacer, None, enabled=True, on_event=lambda e: None, on_end=lambda r: None
    )
    async with _sent(pacer) as sent:
        await output.play(b"\x01\x00" * 600, playback_id="item")  # one frame and 240 samples
        await output.end_of_playback("item")
        frames = _frames(sent)  # before the pacer's task would pad the remainder itself
    assert frames == [b"\x01\x00" * 480, b"\x01\x00" * 120 + bytes(720)]


async def test_end_of_playback_after_stop_audio_plays_nothing_of_the_interrupted_audio() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    output = _output(pacer)
    async with _sent(pacer) as sent:
        await output.play(_loud(24000, 0.5), playback_id="interrupted")
        output.stop_audio()
        await output.end_of_playback("interrupted")
    stop = next(i for i, item in enumerate(sent) if isinstance(item, StopAudio))
    assert sent[stop + 1 :] == []


async def test_end_of_playback_on_a_one_way_stream_sends_nothing() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    output = SessionOutput(
        pacer,
        resampler(24000, 16000),
        enabled=False,
        on_event=lambda e: None,
        on_end=lambda r: None,
    )
    async with _sent(pacer) as sent:
        await output.play(_loud(24000, 0.5), playback_id="item")
        await output.end_of_playback("item")
    assert sent == []
