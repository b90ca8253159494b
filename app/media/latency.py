"""What the bridge adds to every turn, per direction, kept per call.

    inbound   an ACS frame's arrival on /ws -> the backend has handed its audio on (to the
              model's socket, or downstream): every audio frame is measured
    outbound  audio reaching the call's output while nothing of it was queued (a response's
              first audio, or each echo) -> the frame that starts it leaves for ACS
    turn      the caller's end of speech reaching the bridge -> the first agent audio sent to
              ACS: the inbound share (the caller's slowest frame of the turn, a bound on its
              last one), the backend's own (end of speech as the model or its VAD saw it ->
              the response's first audio handed on), and the outbound share (handed on ->
              its first frame sent), which add up to the whole

Samples are kept as plain floats on the media path and handed to the Prometheus histograms at
the session's metrics flush (once a second), not per frame.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEPT_TURNS = 50


@dataclass(frozen=True, slots=True)
class TurnLatency:
    """One turn, in milliseconds: the whole, and the bridge's share in each direction."""

    turn_ms: float  # inbound_ms + backend_ms + outbound_ms
    backend_ms: float  # the model or downstream: end of speech -> its first audio handed on
    inbound_ms: float  # the slowest caller frame of the turn, arrival -> handed on
    outbound_ms: float  # the response's first audio, handed on -> its first frame sent

    def as_dict(self) -> dict[str, float]:
        return {
            "turn_ms": self.turn_ms,
            "backend_ms": self.backend_ms,
            "inbound_ms": self.inbound_ms,
            "outbound_ms": self.outbound_ms,
        }


class CallLatency:
    """The call's latency samples and turns; `clock` is the session's (the arrivals' clock)."""

    __slots__ = (
        "_clock",
        "_end_of_speech",
        "_inbound_max",
        "_turns_drained",
        "inbound_samples",
        "outbound_samples",
        "turns",
    )

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.inbound_samples: list[float] = []  # seconds, since the last `drain`
        self.outbound_samples: list[float] = []
        self.turns: list[TurnLatency] = []
        self._turns_drained = 0  # turns ever drained (the list keeps only the latest)
        self._inbound_max = 0.0  # seconds, over the caller's frames since the last turn
        # (backend ms, when the backend reported it): a turn waiting for its first frame out.
        self._end_of_speech: tuple[float, float] | None = None

    def inbound(self, arrived: float) -> None:
        """A caller frame that arrived at `arrived` has been handed on by the backend."""
        seconds = self._clock() - arrived
        self.inbound_samples.append(seconds)
        if seconds > self._inbound_max:
            self._inbound_max = seconds

    def outbound(self, received: float, sent: float) -> None:
        """Audio received at `received` by an idle output started going out at `sent`."""
        seconds = sent - received
        self.outbound_samples.append(seconds)
        pending = self._end_of_speech
        if pending is not None and received >= pending[1]:
            self._end_of_speech = None
            backend_ms, reported = pending
            inbound_ms = round(self._inbound_max * 1000.0, 1)
            outbound_ms = round((sent - min(reported, received)) * 1000.0, 1)
            turn = TurnLatency(
                turn_ms=round(inbound_ms + backend_ms + outbound_ms, 1),
                backend_ms=backend_ms,
                inbound_ms=inbound_ms,
                outbound_ms=outbound_ms,
            )
            self._inbound_max = 0.0
            self.turns.append(turn)
            if len(self.turns) > MAX_KEPT_TURNS:
                del self.turns[0]
                self._turns_drained -= 1

    def response_started(self, backend_ms: float) -> None:
        """The backend's first audio of a response, `backend_ms` after the caller stopped
        talking (its `turn_latency` event, reported as it hands the audio on)."""
        self._end_of_speech = (backend_ms, self._clock())

    def drain(self) -> tuple[list[float], list[float], list[float]]:
        """The samples since the last call (seconds): inbound, outbound, and whole turns."""
        inbound, self.inbound_samples = self.inbound_samples, []
        outbound, self.outbound_samples = self.outbound_samples, []
        start = max(0, self._turns_drained)
        turns = [turn.turn_ms / 1000.0 for turn in self.turns[start:]]
        self._turns_drained = len(self.turns)
        return inbound, outbound, turns
