"""The model's audio is played on the spot while the output takes it, in order behind a wait."""

from __future__ import annotations

import asyncio

from app.backends.realtime.player import AudioPlayer
from tests.backends.realtime.conftest import FakeOutput


async def test_an_idle_player_plays_a_chunk_before_enqueue_returns() -> None:
    output = FakeOutput()
    plays: list[None] = []
    player = AudioPlayer(output, on_play=lambda: plays.append(None))
    player.enqueue("item_1", b"\x01\x00")
    player.finish("item_1")
    # No task switch: both were handed over within the calls.
    assert output.log == [("play", "item_1"), ("end", "item_1")]
    assert len(plays) == 1
    await player.close()


async def test_chunks_after_a_play_that_waits_queue_behind_it_in_order() -> None:
    output = FakeOutput()
    output.gate = asyncio.Event()  # the outbound buffer is full
    player = AudioPlayer(output)
    player.enqueue("item_1", b"\x01\x00")
    player.enqueue("item_1", b"\x02\x00")
    player.finish("item_1")
    await asyncio.sleep(0)
    assert output.log == []
    assert player.queued == 2
    output.gate.set()
    await output.wait_for(lambda o: len(o.log) == 3)
    assert output.log == [("play", "item_1"), ("play", "item_1"), ("end", "item_1")]
    assert bytes(output.played["item_1"]) == b"\x01\x00\x02\x00"
    await player.close()


async def test_interrupt_abandons_a_play_that_waits_and_what_queued_behind_it() -> None:
    output = FakeOutput()
    output.gate = asyncio.Event()
    player = AudioPlayer(output)
    player.enqueue("item_1", b"\x01\x00")  # waits on the spot: its rest goes to the task
    player.enqueue("item_1", b"\x02\x00")
    player.interrupt()  # before the player's task ran
    player.enqueue("item_2", b"\x03\x00")
    output.gate.set()
    await output.wait_for(lambda o: len(o.log) == 1)
    await asyncio.sleep(0.01)
    assert output.log == [("play", "item_2")]
    assert "item_1" not in output.played
    await player.close()
