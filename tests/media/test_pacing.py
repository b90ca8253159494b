"""The outbound pacer, driven without a socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time

import pytest

from app.media.pacing import OutboundPacer
from app.media.protocol import STOP_AUDIO


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    async def __call__(self, text: str) -> None:
        self.sent.append((time.monotonic(), text))

    @property
    def kinds(self) -> list[str]:
        return [json.loads(t)["Kind"] for _, t in self.sent]

    def audio(self) -> list[bytes]:
        return [
            base64.b64decode(json.loads(t)["AudioData"]["Data"])
            for _, t in self.sent
            if '"Kind":"AudioData"' in t
        ]


async def _run(pacer: OutboundPacer, sink: Sink, seconds: float) -> None:
    task = asyncio.create_task(pacer.run(sink))
    await asyncio.sleep(seconds)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_bursts_of_any_size_go_out_as_exact_frames() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    sink = Sink()
    audio = bytes(range(256)) * 10  # 2560 bytes: 4 frames
    await pacer.play(audio[:100])
    await pacer.play(audio[100:1500])
    await pacer.play(audio[1500:])
    await _run(pacer, sink, 0.05)
    frames = sink.audio()
    assert [len(f) for f in frames] == [640] * 4
    assert b"".join(frames) == audio


async def test_a_trailing_partial_frame_is_padded_when_the_playback_ends() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    sink = Sink()
    await pacer.play(b"\x01\x00" * 400)  # 800 bytes: one frame and 160 left over
    await _run(pacer, sink, 0.15)
    frames = sink.audio()
    assert [len(f) for f in frames] == [640, 640]
    assert frames[1] == b"\x01\x00" * 80 + bytes(480)


async def test_stop_audio_overtakes_queued_audio() -> None:
    pacer = OutboundPacer(640, lead_ms=20)
    sink = Sink()
    task = asyncio.create_task(pacer.run(sink))
    await pacer.play(bytes(640 * 100))  # 2 s queued
    await asyncio.sleep(0.1)
    sent_before = len(sink.sent)
    pacer.stop_audio()
    await asyncio.sleep(0.05)
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    kinds = sink.kinds
    assert kinds[sent_before] == "StopAudio"
    assert kinds[sent_before + 1 :] == []  # nothing queued survives the stop
    assert pacer.queued_frames == 0
    assert sink.sent[sent_before][1] == STOP_AUDIO


async def test_frames_are_sent_on_an_absolute_schedule_with_a_lead() -> None:
    pacer = OutboundPacer(640, lead_ms=60)
    sink = Sink()
    await pacer.play(bytes(640 * 30))
    start = time.monotonic()
    await _run(pacer, sink, 0.45)
    times = [t - start for t, _ in sink.sent]
    # The lead (3 frames) goes at once; then one frame per 20 ms: ~ 3 + 0.45 / 0.02.
    assert 20 <= len(times) <= 28
    assert times[3] < 0.05


async def test_play_waits_while_the_buffer_is_full() -> None:
    pacer = OutboundPacer(640, lead_ms=20, buffer_ms=100)
    blocked = asyncio.create_task(pacer.play(bytes(640 * 10)))
    await asyncio.sleep(0.05)
    assert not blocked.done()
    assert pacer.queued_frames == 5
    pacer.stop_audio()
    await asyncio.wait_for(blocked, 1)


async def test_heard_ms_follows_the_wall_clock_and_what_was_sent() -> None:
    now = [100.0]
    pacer = OutboundPacer(640, lead_ms=1000, clock=lambda: now[0])
    sink = Sink()
    await pacer.play(bytes(640 * 10), "item-1")
    await _run(pacer, sink, 0.02)
    assert len(sink.audio()) == 10  # the whole item fits in the lead
    assert pacer.heard_ms("item-1") == 0.0
    now[0] += 0.05
    assert pacer.heard_ms("item-1") == pytest.approx(50.0)
    now[0] += 10.0
    assert pacer.heard_ms("item-1") == 200.0  # never more than was sent
    assert pacer.heard_ms("unknown") == 0.0
