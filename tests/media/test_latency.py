"""What the bridge adds per direction and per turn: the mechanisms, on a fake clock."""

from __future__ import annotations

import asyncio
import contextlib

from app.backends.base import AudioIn, DtmfIn
from app.media.feed import BackendFeed
from app.media.inbound_queue import DropOldestQueue
from app.media.latency import CallLatency, TurnLatency
from app.media.pacing import OutboundPacer
from app.media.protocol import OutboundItem

FRAME = 640


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sink:
    def __init__(self) -> None:
        self.items: list[OutboundItem] = []

    async def __call__(self, item: OutboundItem) -> None:
        self.items.append(item)


def test_a_turn_is_the_sum_of_the_bridges_share_each_way_and_the_backends() -> None:
    clock = Clock()
    latency = CallLatency(clock)
    latency.inbound(clock.now - 0.002)  # a caller frame handed on 2 ms after it arrived
    latency.inbound(clock.now - 0.001)
    latency.response_started(600.0)  # the model spoke 600 ms after the caller stopped
    clock.now += 0.01
    # Its first audio reached the idle output 6 ms after the backend handed it on, and went
    # out 4 ms later: the turn's outbound share is all 10 ms, the output's own sample 4.
    latency.outbound(clock.now - 0.004, clock.now)
    assert latency.turns == [
        TurnLatency(turn_ms=612.0, backend_ms=600.0, inbound_ms=2.0, outbound_ms=10.0)
    ]
    inbound, outbound, turns = latency.drain()
    assert [round(s, 6) for s in inbound] == [0.002, 0.001]
    assert [round(s, 6) for s in outbound] == [0.004]
    assert turns == [0.612]
    assert latency.drain() == ([], [], [])  # each sample reaches the histograms once


def test_audio_that_came_before_the_response_does_not_end_the_turn() -> None:
    clock = Clock()
    latency = CallLatency(clock)
    latency.response_started(300.0)
    latency.outbound(clock.now - 0.02, clock.now)  # the previous response's tail
    assert latency.turns == []
    latency.outbound(clock.now, clock.now + 0.001)
    assert [turn.turn_ms for turn in latency.turns] == [301.0]


async def test_audio_into_a_silent_output_is_timed_to_its_first_frame_out() -> None:
    clock = Clock()
    timed: list[tuple[float, float]] = []
    pacer = OutboundPacer(
        FRAME, lead_ms=80, clock=clock, on_first_frame=lambda c, s: timed.append((c, s))
    )
    runner = asyncio.create_task(pacer.run(Sink()))
    await asyncio.sleep(0)
    await pacer.play(bytes(FRAME), "item_1")
    assert timed == [(100.0, 100.0)]  # sent on the spot
    await pacer.play(bytes(FRAME * 8), "item_1")  # the caller still hears the first frame
    await pacer.play(bytes(FRAME), "item_2")  # a new response behind queued audio
    assert len(timed) == 1  # both wait their turn: pacing, not delay
    while pacer.queued_frames:  # all of it goes out on schedule
        clock.now += 0.02
        pacer.flush()  # sends what is due from here
    clock.now += 1.0  # played out: the output is silent
    await pacer.play(bytes(FRAME), "item_3")
    assert timed[1:] == [(clock.now, clock.now)]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def test_less_than_a_frame_into_a_silent_output_counts_its_padding() -> None:
    clock = Clock()
    timed: list[tuple[float, float]] = []
    pacer = OutboundPacer(FRAME, clock=clock, on_first_frame=lambda c, s: timed.append((c, s)))
    runner = asyncio.create_task(pacer.run(Sink()))
    await asyncio.sleep(0)
    await pacer.play(bytes(FRAME // 4), "item_1")  # sent at once, after 15 ms of silence
    assert [(came, round(sent - came, 6)) for came, sent in timed] == [(100.0, 0.015)]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def test_stop_audio_forgets_a_response_that_never_went_out() -> None:
    clock = Clock()
    timed: list[tuple[float, float]] = []
    pacer = OutboundPacer(FRAME, clock=clock, on_first_frame=lambda c, s: timed.append((c, s)))
    await pacer.play(bytes(FRAME), "item_1")  # no socket yet: queued
    pacer.stop_audio()
    runner = asyncio.create_task(pacer.run(Sink()))
    await asyncio.sleep(0)
    clock.now = 100.5
    await pacer.play(bytes(FRAME), "item_2")
    assert timed == [(100.5, 100.5)]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


async def test_the_feed_reports_each_timed_item_once_handled_on_the_spot_or_later() -> None:
    handled_at: list[float] = []
    gate = asyncio.Event()

    async def handle(item: AudioIn | DtmfIn) -> None:
        if isinstance(item, AudioIn) and item.pcm == b"\x01\x00":
            await gate.wait()

    async def opened() -> None:
        return None

    feed: BackendFeed[AudioIn | DtmfIn] = BackendFeed(
        DropOldestQueue(10), _raise, handled_at.append
    )
    feed.start(handle, opened())
    runner = asyncio.create_task(feed.run())
    feed.deliver(AudioIn(b"\x00\x00"), 1.0)
    assert handled_at == [1.0]  # on the spot
    feed.deliver(AudioIn(b"\x01\x00"), 2.0)  # waits: the feeder finishes it
    feed.deliver(DtmfIn("5"))  # not timed
    feed.deliver(AudioIn(b"\x02\x00"), 3.0)  # queued behind
    assert handled_at == [1.0]
    gate.set()
    for _ in range(10):
        await asyncio.sleep(0)
    assert handled_at == [1.0, 2.0, 3.0]
    runner.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await runner


def test_a_dropped_frame_takes_its_arrival_time_with_it() -> None:
    queue: DropOldestQueue[AudioIn | DtmfIn] = DropOldestQueue(2)
    queue.put(DtmfIn("1"), None)
    queue.put(AudioIn(b"a"), 1.0)
    queue.put(AudioIn(b"b"), 2.0)  # drops "a"
    assert queue.pop_timed() == (DtmfIn("1"), None)
    assert queue.pop_timed() == (AudioIn(b"b"), 2.0)


def _raise(exc: Exception) -> None:
    raise exc
