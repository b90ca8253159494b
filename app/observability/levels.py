"""Audio levels for the console's meters: RMS of PCM16 audio, measured a few times a second.

The meter only needs a value every ~200 ms, so `LevelMeter` measures one frame per interval and
skips the rest: per frame it costs a clock comparison.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable

LEVEL_INTERVAL_S = 0.2
_FULL_SCALE = 32768.0


def pcm16_rms(pcm: bytes) -> float:
    """RMS of little-endian PCM16 `pcm`, from 0.0 (silence) to 1.0 (full-scale square wave)."""
    usable = len(pcm) - len(pcm) % 2
    if usable <= 0:
        return 0.0
    # Imported on first use (a few times a second while a console watches): a service nobody
    # watches and that resamples nothing never loads numpy.
    np = importlib.import_module("numpy")
    samples = np.frombuffer(pcm, dtype="<i2", count=usable // 2).astype(np.float32)
    return min(float(np.sqrt(np.mean(samples * samples))) / _FULL_SCALE, 1.0)


class LevelMeter:
    """Reports a level at most once per `interval_s`: `measure(pcm)` returns None in between."""

    __slots__ = ("_clock", "_interval_s", "_next")

    def __init__(
        self,
        interval_s: float = LEVEL_INTERVAL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._interval_s = interval_s
        self._clock = clock
        self._next = 0.0

    def measure(self, pcm: bytes) -> float | None:
        """The level of `pcm` when one is due, else None (and no work done)."""
        now = self._clock()
        if now < self._next:
            return None
        self._next = now + self._interval_s
        return pcm16_rms(pcm)
