"""What the bot's pipeline tells about the call: transcript lines and turn latency.

An observer on the bot's own pipeline (added by `AcsTransport` when the pipeline is set up),
so any bot gets it: the caller's `TranscriptionFrame`s become caller lines; the bot's spoken
text (`TTSTextFrame`s) is gathered per turn and becomes an agent line when the bot stops
speaking, marked interrupted when an `InterruptionFrame` cut it short. The time from the
caller's end of speech to the bot's first audio is the turn's latency, with the TTFB each
service reported in that turn (`MetricsFrame`s, when the bot enables metrics).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    InterruptionFrame,
    MetricsFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
    VADUserStartedSpeakingFrame,
    VADUserStoppedSpeakingFrame,
)
from pipecat.metrics.metrics import TTFBMetricsData
from pipecat.observers.base_observer import BaseObserver, FramePushed

from app.backends.base import BackendEvent, MediaOutput


class CallObserver(BaseObserver):
    """Reports one call's transcript and turn latency to its `MediaOutput`."""

    def __init__(self, output: MediaOutput, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__(observe_every_push=False)
        self._output = output
        self._clock = clock
        self._spoken: list[str] = []
        self._spaced = False
        self._user_stopped_at: float | None = None
        self._ttfb_ms: dict[str, float] = {}

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if isinstance(frame, TranscriptionFrame):
            self._line("caller", frame.text)
        elif isinstance(frame, TTSTextFrame):
            self._spoken.append(frame.text)
            self._spaced = frame.includes_inter_frame_spaces
        elif isinstance(frame, BotStoppedSpeakingFrame):
            self._agent_line(interrupted=False)
        elif isinstance(frame, InterruptionFrame):
            self._agent_line(interrupted=True)
        elif isinstance(frame, UserStartedSpeakingFrame | VADUserStartedSpeakingFrame):
            # Speech again before the agent answered: the turn ends where this speech ends.
            self._user_stopped_at = None
        elif isinstance(frame, UserStoppedSpeakingFrame | VADUserStoppedSpeakingFrame):
            if self._user_stopped_at is None:
                self._user_stopped_at = self._clock()
                self._ttfb_ms = {}
        elif isinstance(frame, BotStartedSpeakingFrame):
            self._turn_started()
        elif isinstance(frame, MetricsFrame):
            for metric in frame.data:
                if isinstance(metric, TTFBMetricsData) and metric.value > 0:
                    self._ttfb_ms[metric.processor] = round(metric.value * 1000.0, 1)

    def _turn_started(self) -> None:
        stopped, self._user_stopped_at = self._user_stopped_at, None
        if stopped is None:
            return
        ms = round((self._clock() - stopped) * 1000.0, 1)
        self._output.report(BackendEvent("turn_latency", {"ms": ms, "ttfb_ms": self._ttfb_ms}))

    def _agent_line(self, *, interrupted: bool) -> None:
        if not self._spoken:
            return
        separator = "" if self._spaced else " "
        text, self._spoken = separator.join(self._spoken), []
        self._line("agent", text, interrupted=interrupted)

    def _line(self, role: str, text: str, *, interrupted: bool = False) -> None:
        text = " ".join(text.split())
        if text:
            data = {"role": role, "text": text, "interrupted": interrupted}
            self._output.report(BackendEvent("transcript", data))
