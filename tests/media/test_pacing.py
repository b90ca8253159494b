"""The outbound pacer, driven without a socket."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time

import pytest

from app.media import eager
from app.media.pacing import OutboundPacer
from app.media.protocol import STOP_AUDIO, OutboundItem, outbound_message


class Sink:
    def __init__(self) -> None:
        self.sent: list[tuple[float, str]] = []

    async def __call__(self, item: OutboundItem) -> None:
        self.sent.append((time.monotonic(), outbound_message(item)))

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
    await _stop(task)


async def _stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def test_bursts_of_any_size_go_out_as_exact_frames() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    sink = Sink()
    audio = bytes(range(256)) * 10  # 2560 bytes: 4 frames
    await pacer.play(audio[:700])
    await pacer.play(audio[700:1500])
    await pacer.play(audio[1500:])
    await _run(pacer, sink, 0.05)
    frames = sink.audio()
    assert [len(f) for f in frames] == [640] * 4
    assert b"".join(frames) == audio


async def test_less_than_a_frame_into_a_silent_output_goes_at_once_after_silence() -> None:
    pacer = OutboundPacer(640, lead_ms=1000)
    sink = Sink()
    await pacer.play(b"\x01\x00" * 200)  # 400 bytes: a resampler's short first output
    await pacer.play(b"\x02\x00" * 320)  # the output is no longer silent: re-chunked
    await _run(pacer, sink, 0.15)
    frames = sink.audio()
    assert frames[0] == bytes(240) + b"\x01\x00" * 200
    assert frames[1][:640] == b"\x02\x00" * 320


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


class GatedSink(Sink):
    """A socket under write back-pressure while `gate` is clear."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.gate.set()
        self.waiting = 0

    async def __call__(self, item: OutboundItem) -> None:
        if not self.gate.is_set():
            self.waiting += 1
            await self.gate.wait()
        await super().__call__(item)


def play_now(pacer: OutboundPacer, pcm: bytes) -> bool:
    """Whether `play` completed without suspending (what the media feed relies on)."""
    rest = eager.step(pacer.play(pcm))
    if rest is None:
        return True
    rest.close()
    return False


def _frame(index: int) -> bytes:
    return index.to_bytes(2, "little") * 320


async def _started(pacer: OutboundPacer, sink: Sink) -> asyncio.Task[None]:
    task = asyncio.create_task(pacer.run(sink))
    await asyncio.sleep(0)  # run() registers the socket's send
    return task


async def test_a_due_frame_goes_out_from_play_itself_without_suspending() -> None:
    pacer = OutboundPacer(640, lead_ms=80)
    sink = Sink()
    task = await _started(pacer, sink)
    assert play_now(pacer, _frame(1))
    # Sent before this coroutine yielded once: no task switch stood between queue and socket.
    assert sink.audio() == [_frame(1)]
    assert pacer.frames_sent == 1
    await _stop(task)


async def test_direct_sends_keep_the_real_time_schedule() -> None:
    pacer = OutboundPacer(640, lead_ms=40)
    sink = Sink()
    task = await _started(pacer, sink)
    for index in range(20):  # a burst of 400 ms: only the lead goes out at once
        assert play_now(pacer, _frame(index))
    # The first frame plays now; two more fit in the 40 ms lead, and one more within a frame.
    assert len(sink.sent) == 4
    await asyncio.sleep(0.2)
    assert 11 <= len(sink.sent) <= 15
    await _stop(task)
    assert sink.audio() == [_frame(i) for i in range(len(sink.sent))]


async def test_a_send_that_must_wait_is_finished_before_anything_else() -> None:
    pacer = OutboundPacer(640, lead_ms=200)
    sink = GatedSink()
    task = await _started(pacer, sink)
    sink.gate.clear()
    for index in range(5):
        assert play_now(pacer, _frame(index))
    assert sink.waiting == 1  # the first send blocked; the rest stayed queued behind it
    assert sink.sent == []
    sink.gate.set()
    await asyncio.sleep(0.05)
    assert sink.audio() == [_frame(i) for i in range(5)]
    await _stop(task)


async def test_stop_audio_goes_out_at_once_and_after_an_in_flight_frame() -> None:
    pacer = OutboundPacer(640, lead_ms=200)
    sink = GatedSink()
    task = await _started(pacer, sink)
    pacer.stop_audio()
    assert sink.kinds == ["StopAudio"]  # nothing was sending: sent from stop_audio itself
    sink.gate.clear()
    for index in range(5):
        play_now(pacer, _frame(index))
    pacer.stop_audio()  # frame 0 is on the wire (blocked); 1..4 are dropped
    sink.gate.set()
    await asyncio.sleep(0.05)
    assert sink.kinds == ["StopAudio", "AudioData", "StopAudio"]
    assert sink.audio() == [_frame(0)]
    assert pacer.stops_sent == 2
    await _stop(task)


async def test_a_failed_direct_send_ends_run_with_the_error() -> None:
    pacer = OutboundPacer(640)

    async def broken(item: OutboundItem) -> None:
        raise ConnectionResetError("peer gone")

    task = asyncio.create_task(pacer.run(broken))
    await asyncio.sleep(0)
    play_now(pacer, _frame(0))
    with pytest.raises(ConnectionResetError):
        await asyncio.wait_for(task, 1)


async def test_play_waits_only_while_the_buffer_is_full() -> None:
    pacer = OutboundPacer(640, buffer_ms=100)  # five frames, not running: nothing drains
    for index in range(5):
        assert play_now(pacer, _frame(index))
    waiting = eager.step(pacer.play(bytes(640 * 2 + 100)))  # two frames and a remainder
    assert waiting is not None
    assert pacer.queued_frames == 5
    pacer.stop_audio()  # makes room: the waiting play finishes
    await asyncio.wait_for(waiting, 1)
    assert pacer.queued_frames == 2


class _CountingEvent(asyncio.Event):
    def __init__(self) -> None:
        super().__init__()
        self.sets = 0

    def set(self) -> None:
        self.sets += 1
        super().set()


async def test_resampled_audio_streams_without_padding_and_without_waking_the_task() -> None:
    # A 24 -> 16 kHz resampler leaves a remainder after every chunk: the stream must play
    # gap-free, with the remainder neither padded mid-stream nor waking the pacer's task.
    now = [100.0]
    pacer = OutboundPacer(640, lead_ms=80, clock=lambda: now[0])
    wakeups = pacer._wakeup = _CountingEvent()
    sink = Sink()
    task = asyncio.create_task(pacer.run(sink))
    await asyncio.sleep(0)
    chunk = b"\x01\x00" * 330  # 660 bytes: 20 bytes more than a frame each time
    for _ in range(20):
        await pacer.play(chunk, "item")
        await asyncio.sleep(0.005)  # real time: the remainder's timer may fire meanwhile
        now[0] += 0.02
    sent_while_streaming = len(sink.sent)
    now[0] += 0.05  # no more audio: the remainder is padded out
    await asyncio.sleep(0.1)
    await _stop(task)
    frames = sink.audio()
    assert sent_while_streaming == 20  # each chunk's whole frame went out as it came
    assert b"".join(frames[:20]) == (chunk * 20)[: 640 * 20]
    assert frames[20:] == [b"\x01\x00" * 200 + bytes(240)]  # 400 bytes left, then silence
    assert wakeups.sets <= 3  # not once per chunk


async def test_audio_queued_behind_a_frame_the_task_waits_for_does_not_wake_it() -> None:
    # A model sends faster than real time: its audio queues behind frames that are not due yet,
    # and the pacer's task sleeps until the next one is; each new chunk must not wake it.
    pacer = OutboundPacer(640, frame_ms=1000, lead_ms=0, clock=lambda: 100.0)
    sink = Sink()
    task = asyncio.create_task(pacer.run(sink))
    await asyncio.sleep(0)
    for index in range(3):
        await pacer.play(_frame(index))
    for _ in range(5):
        await asyncio.sleep(0)  # the task goes to sleep until the third frame is due (2 s)
    assert len(sink.sent) == 2  # the first plays now, the second within a frame of its time
    wakeups = pacer._wakeup = _CountingEvent()
    for index in range(3, 20):
        await pacer.play(_frame(index))
        await asyncio.sleep(0)
    assert wakeups.sets == 0
    assert pacer.queued_frames == 18
    pacer.stop_audio()  # still heard at once
    await asyncio.sleep(0)
    await _stop(task)
    assert sink.kinds[-1] == "StopAudio"
