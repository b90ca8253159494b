"""Streaming sample-rate conversion of 16-bit mono PCM, state kept across frames.

The rates a call meets (8, 16, 24, 48 kHz) are small ratios, converted by a polyphase FIR: a
Kaiser-windowed sinc at 60 dB, passband to 95 % of the lower Nyquist, 0.9 ms of delay, and for
every 20 ms in, exactly 20 ms out. soxr, kept for other ratios, holds 19 ms of delay at its HQ
and LQ settings and hands its output out in blocks (nothing for one frame, a frame and a half
for the next): 19 to about 50 ms added to every turn, each way. The filter costs about 10 us
more CPU per 20 ms frame than soxr did, in numpy (measured in `bench/`).

numpy (and soxr, when needed) are imported with the first resampler: a service whose calls
need none (an echo at the call's rate, say) never loads them (about 12-17 MiB of its idle
memory). A backend that knows its calls will resample loads numpy at startup (`preload`), off
the event loop: imported by the first call instead, it stalled every call's media for about
130 ms.
"""

from __future__ import annotations

import importlib
from math import gcd
from typing import Any, Protocol

MAX_RATIO_TERM = 12  # L and M of L/M up to this go through the polyphase filter
STOPBAND_DB = 60.0
TRANSITION_HZ = 2000.0
PASSBAND = 0.95  # of the lower rate's Nyquist frequency
MAX_PLANS = 64


class Resampler(Protocol):
    """One direction of one call: feed frames in order, get resampled PCM out."""

    in_rate: int
    out_rate: int

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        """Resample the next chunk; `last` flushes what the filter still holds (the end of a
        stream, e.g. one response), and the next chunk starts a fresh one."""
        ...

    def reset(self) -> None:
        """Start afresh: after a barge-in, the audio the filter still holds must never play."""
        ...


class PolyphaseResampler:
    """Up by L, filter, down by M, computing only the outputs kept."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        np = self._np = importlib.import_module("numpy")
        divisor = gcd(in_rate, out_rate)
        up = self._up = out_rate // divisor
        self._down = in_rate // divisor
        self._taps, phases = _design(np, in_rate, out_rate, up)
        self._phases: Any = phases  # (up, taps): each phase reversed, to dot with a window
        self._plans: dict[tuple[int, int], tuple[int, list[tuple[Any, int, slice, int]], int]] = {}
        self._buffer: Any = np.zeros(self._taps - 1 + 1024, dtype=np.float32)
        self._position = 0
        self.delay_s = (self._taps * up - 1) / 2 / (in_rate * up)

    def reset(self) -> None:
        self._buffer[: self._taps - 1] = 0.0
        self._position = 0

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        # At the end of a stream the filter's last 0.9 ms (a response's closing silence, in
        # practice) is dropped, not padded out into a frame of its own: 1 s in, 1 s out.
        out = self._run(self._np.frombuffer(pcm, dtype="<i2")) if pcm else b""
        if last:
            self.reset()
        return out

    def _run(self, samples: Any) -> bytes:
        np, taps = self._np, self._taps
        count = len(samples)
        key = (count, self._position)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= MAX_PLANS:  # chunks of ever new sizes: keep the memory bounded
                self._plans.clear()
            plan = self._plans[key] = self._plan(count)
        outputs, steps, self._position = plan
        buffer = self._buffer
        if taps - 1 + count > len(buffer):
            buffer = self._buffer = np.concatenate(
                (buffer[: taps - 1], np.zeros(count, dtype=np.float32))
            )
        buffer[taps - 1 : taps - 1 + count] = samples
        item = buffer.strides[0]
        row = self._down * item
        result = np.empty(outputs, dtype=np.float32)
        for phase, first, where, rows in steps:
            # The windows of this phase's outputs, as a strided view of the buffer (no copy).
            windows = np.ndarray((rows, taps), np.float32, buffer, first * item, (row, item))
            result[where] = windows.dot(phase)
        buffer[: taps - 1] = buffer[count : count + taps - 1]
        np.clip(result, -32768.0, 32767.0, out=result)
        data: bytes = result.astype("<i2").tobytes()
        return data

    def _plan(self, count: int) -> tuple[int, list[tuple[Any, int, slice, int]], int]:
        """For `count` input samples from the current position: which outputs each phase
        makes, from which input window, and where the next chunk's first output falls."""
        up, down, start = self._up, self._down, self._position
        times = range(start, count * up, down)  # output instants, in up-sampled samples
        steps = []
        for offset in range(min(up, len(times))):
            instant = times[offset]
            rows = len(range(offset, len(times), up))
            steps.append((self._phases[instant % up], instant // up, slice(offset, None, up), rows))
        following = times[-1] + down - count * up if times else start - count * up
        return len(times), steps, following


class SoxrResampler:
    """soxr's HQ stream, for ratios the polyphase filter does not take."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._np: Any = importlib.import_module("numpy")
        self._soxr: Any = importlib.import_module("soxr")
        self.reset()

    def reset(self) -> None:
        self._stream = self._soxr.ResampleStream(
            self.in_rate, self.out_rate, 1, dtype="int16", quality="HQ"
        )

    def process(self, pcm: bytes, *, last: bool = False) -> bytes:
        samples = self._np.frombuffer(pcm, dtype="<i2")
        out = self._stream.resample_chunk(samples, last=last)
        resampled: bytes = out.astype("<i2", copy=False).tobytes()
        if last:
            # soxr refuses input after the last chunk ("Input after last input").
            self.reset()
        return resampled


def _design(np: Any, in_rate: int, out_rate: int, up: int) -> tuple[int, Any]:
    """Taps per phase, and the phases of a Kaiser-windowed sinc low-pass at the up-sampled
    rate (gain `up`, so the level is kept)."""
    rate = in_rate * up
    cutoff = min(in_rate, out_rate) / 2 * PASSBAND
    beta = 0.1102 * (STOPBAND_DB - 8.7)
    length = int(np.ceil((STOPBAND_DB - 8) / (2.285 * 2 * np.pi * TRANSITION_HZ / rate)))
    taps = -(-length // up)
    total = taps * up
    middle = np.arange(total) - (total - 1) / 2
    kernel = 2 * cutoff / rate * np.sinc(2 * cutoff / rate * middle) * np.kaiser(total, beta)
    phases = np.ascontiguousarray((kernel * up).reshape(taps, up).T[:, ::-1], dtype=np.float32)
    return taps, phases


def preload() -> None:
    """Import numpy and run a resampler once (blocking for about 100 ms: call it in a thread,
    before calls arrive)."""
    PolyphaseResampler(16000, 24000).process(bytes(640))


def resampler(in_rate: int, out_rate: int) -> Resampler | None:
    """A resampler, or None when the rates already match."""
    if in_rate == out_rate:
        return None
    divisor = gcd(in_rate, out_rate)
    if max(in_rate, out_rate) // divisor <= MAX_RATIO_TERM:
        return PolyphaseResampler(in_rate, out_rate)
    return SoxrResampler(in_rate, out_rate)
