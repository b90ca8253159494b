"""The backend's outbound side: resampled to the call's rate; a barge-in leaves nothing behind."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import numpy as np

from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.protocol import OutboundItem, StopAudio
from app.media.resample import Resampler


def _loud(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2").tobytes()


def _output(pacer: OutboundPacer) -> SessionOutput:
    return SessionOutput(
        pacer, Resampler(24000, 16000), enabled=True, on_event=lambda e: None, on_end=lambda r: None
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
