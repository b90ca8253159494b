"""The backend's outbound side: resampled to the call's rate; a barge-in leaves nothing behind."""

from __future__ import annotations

import numpy as np

from app.media.output import SessionOutput
from app.media.pacing import OutboundPacer
from app.media.resample import Resampler


def _loud(rate: int, seconds: float) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 20000).astype("<i2").tobytes()


def _output(pacer: OutboundPacer) -> SessionOutput:
    return SessionOutput(
        pacer, Resampler(24000, 16000), enabled=True, on_event=lambda e: None, on_end=lambda r: None
    )


def _queued_pcm(pacer: OutboundPacer) -> bytes:
    return b"".join(frame for frame, _ in pacer._frames)


async def test_after_stop_audio_no_interrupted_audio_leaks_into_the_next_playback() -> None:
    pacer = OutboundPacer(640)  # not running: what play() queues stays visible
    output = _output(pacer)
    await output.play(_loud(24000, 0.5), playback_id="interrupted")
    output.stop_audio()
    await output.play(bytes(24000 * 2 // 5), playback_id="next")  # 200 ms of silence
    pcm = np.frombuffer(_queued_pcm(pacer), dtype="<i2")
    assert len(pcm) > 0
    assert int(np.abs(pcm).max()) <= 2  # rounding noise, not a tail of the 440 Hz tone


async def test_resampled_audio_keeps_its_duration() -> None:
    pacer = OutboundPacer(640)
    output = _output(pacer)
    for _ in range(10):
        await output.play(_loud(24000, 0.1))
    queued = len(_queued_pcm(pacer)) + len(pacer._partial)
    # 1 s at 24 kHz -> about 1 s at 16 kHz (the filter holds back a few ms)
    assert 16000 * 2 * 0.97 <= queued <= 16000 * 2
