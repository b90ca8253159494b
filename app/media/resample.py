"""Streaming sample-rate conversion of 16-bit mono PCM with soxr (state kept across frames).

numpy and soxr are imported with the first resampler: a service whose calls need none (an
echo at the call's rate, say) never loads them (about 12-17 MiB of its idle memory). A backend
that knows its calls will resample loads them at startup (`preload`), off the event loop:
imported by the first call instead, they stalled every call's media for about 130 ms.
"""

from __future__ import annotations

import importlib
from typing import Any


class Resampler:
    """One direction of one call: feed frames in order, get resampled PCM out."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._np: Any = importlib.import_module("numpy")
        self._soxr: Any = importlib.import_module("soxr")
        self.reset()

    def reset(self) -> None:
        """Start a fresh filter: after a barge-in, the audio it still holds must never play;
        after a final flush, the old stream takes no more input."""
        self._stream = self._soxr.ResampleStream(
            self.in_rate, self.out_rate, 1, dtype="int16", quality="HQ"
        )

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample the next chunk; `last` flushes what the filter still holds (the end of a
        stream, e.g. one response), and the next chunk starts a fresh one."""
        samples = self._np.frombuffer(pcm, dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        resampled: bytes = out.astype("<i2", copy=False).tobytes()
        if last:
            # soxr refuses input after the last chunk ("Input after last input").
            self.reset()
        return resampled


def preload() -> None:
    """Import numpy and soxr and run soxr once (blocking for about 130 ms: call it in a thread,
    before calls arrive)."""
    Resampler(16000, 24000).process(bytes(640))


def resampler(in_rate: int, out_rate: int) -> Resampler | None:
    """A resampler, or None when the rates already match."""
    return None if in_rate == out_rate else Resampler(in_rate, out_rate)
