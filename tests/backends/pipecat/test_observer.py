"""The Pipecat call observer's turn: from the caller's last end of speech to the agent's
first audio, even when the caller spoke again before the agent answered."""

from __future__ import annotations

from typing import Any

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    Frame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import FramePushed
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor

from app.backends.base import BackendEvent
from app.backends.pipecat.observer import CallObserver


class Output:
    def __init__(self) -> None:
        self.events: list[BackendEvent] = []

    def report(self, event: BackendEvent) -> None:
        self.events.append(event)


async def _push(observer: CallObserver, frame: Frame) -> None:
    processor = FrameProcessor()
    await observer.on_push_frame(
        FramePushed(processor, processor, frame, FrameDirection.DOWNSTREAM, 0)
    )


async def _turns(frames: list[tuple[float, Frame]]) -> list[float]:
    now = [0.0]
    output = Output()
    observer = CallObserver(output, clock=lambda: now[0])  # type: ignore[arg-type]
    for at, frame in frames:
        now[0] = at
        await _push(observer, frame)
    latencies: list[Any] = [e.data["ms"] for e in output.events if e.kind == "turn_latency"]
    return latencies


async def test_a_turn_runs_from_the_first_stop_of_the_last_utterance() -> None:
    turns = await _turns(
        [
            (1.0, VADUserStartedSpeakingFrame()),
            (2.0, VADUserStoppedSpeakingFrame()),  # the caller paused...
            (2.1, UserStoppedSpeakingFrame()),
            (2.5, UserStartedSpeakingFrame()),  # ...and went on before the agent answered
            (2.5, VADUserStartedSpeakingFrame()),
            (3.0, VADUserStoppedSpeakingFrame()),  # the end of speech the agent answers
            (3.2, UserStoppedSpeakingFrame()),  # the turn detector's confirmation: later
            (3.4, BotStartedSpeakingFrame()),
        ]
    )
    assert turns == [400.0]


async def test_each_answer_is_one_turn() -> None:
    turns = await _turns(
        [
            (1.0, VADUserStoppedSpeakingFrame()),
            (1.3, BotStartedSpeakingFrame()),
            (1.8, BotStartedSpeakingFrame()),  # more agent speech, no new caller turn
            (3.0, VADUserStoppedSpeakingFrame()),
            (3.5, BotStartedSpeakingFrame()),
        ]
    )
    assert turns == [300.0, 500.0]
