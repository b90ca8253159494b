"""Markers in the audio itself, for paths that resample (where byte markers do not survive).

The caller's audio is a quiet 400 Hz tone (8 whole cycles per 20 ms frame, so it runs on
without a seam) with a *group* of four short loud bumps every other frame, all through the
call. A group says who and when in the gaps between its bumps, counted in ticks of 125 us
(2 samples at 16 kHz, 3 at 24 kHz, so resampling keeps them whole):

    bump 0 at tick 4 of an even frame    the group's time: its peak is timed, not decoded
    bump 1, 8 + code ticks later          code = call index % 128
    bump 2, 8 + number ticks later        number = (frame seq // 2) % 128
    bump 3, 8 + check ticks later         check = (code + number) % 16

The bumps are 0.375 ms raised-cosine pulses (their spectrum ends near 5 kHz, inside every
resampler's passband), peaks located to a fraction of a sample by a parabola through the
three top samples. `PulseDecoder` finds groups in a stream of chunks, however the chunks cut
them, and times bump 0 from the chunk that held it: a chunk's last sample is taken to be
"now" at the chunk's time (audio streams at real time), earlier samples as that much earlier.
"""

from __future__ import annotations

import base64
import itertools
from typing import Final

import numpy as np

TICK_HZ: Final = 8000
GROUP_FRAMES: Final = 2  # a group starts every other frame
CALL_CODES: Final = 128
NUMBERS: Final = 128  # a group's number repeats after 128 groups (5.12 s)
FIRST_TICK: Final = 4
MIN_GAP_TICKS: Final = 8
CHECKS: Final = 16  # the check gap: (code + number) % 16
_SPAN_TICKS: Final = 3 * MIN_GAP_TICKS + (CALL_CODES - 1) + (NUMBERS - 1) + (CHECKS - 1)
_BUMP_S: Final = 0.000375
_PEAK: Final = 20000
_THRESHOLD: Final = 10000  # half a bump: far above the tone and any resampler ringing
_TONE_HZ: Final = 400.0
_TONE_AMPLITUDE: Final = 1000
_MAX_CODE_ERROR: Final = 0.35  # ticks: a gap further from a whole tick is not a group


def call_code(call_index: int) -> int:
    """The code a call's groups carry (unique for up to 128 calls)."""
    return call_index % CALL_CODES


def first_bump_offset(sample_rate: int) -> int:
    """The sample of an even frame at which its group's bump 0 peaks."""
    return FIRST_TICK * sample_rate // TICK_HZ


def marked_frames_b64(call_index: int, sample_rate: int, frame_samples: int) -> list[bytes]:
    """One call's audio for frames 0..255 (frame `seq` sends item `seq % 256`), base64."""
    per_tick = sample_rate // TICK_HZ
    frames = GROUP_FRAMES * NUMBERS
    t = np.arange(frames * frame_samples) / sample_rate
    pcm = _TONE_AMPLITUDE * np.sin(2 * np.pi * _TONE_HZ * t)
    bump = _bump(sample_rate)
    half = len(bump) // 2
    code = call_code(call_index)
    for number in range(NUMBERS):
        start = number * GROUP_FRAMES * frame_samples
        first = FIRST_TICK
        second = first + MIN_GAP_TICKS + code
        third = second + MIN_GAP_TICKS + number
        check = third + MIN_GAP_TICKS + (code + number) % CHECKS
        for tick in (first, second, third, check):
            centre = start + tick * per_tick
            pcm[centre - half : centre - half + len(bump)] += bump
    samples = np.clip(np.round(pcm), -32768, 32767).astype("<i2")
    return [
        base64.b64encode(samples[i * frame_samples : (i + 1) * frame_samples].tobytes())
        for i in range(frames)
    ]


def _bump(sample_rate: int) -> np.ndarray:
    """A raised-cosine pulse of `_BUMP_S`, odd length, peaking at `_PEAK` in its middle."""
    n = round(_BUMP_S * sample_rate) | 1
    return np.asarray(_PEAK * np.sin(np.pi * np.arange(1, n + 1) / (n + 1)) ** 2)


Mark = tuple[int, int, tuple[float, ...]]  # (call code, number, bump 0's time per clock)


class PulseDecoder:
    """Finds marker groups in one stream of PCM16 chunks at `sample_rate` (no I/O)."""

    def __init__(self, sample_rate: int) -> None:
        self.rate = sample_rate
        self.garbled = 0  # groups whose gaps decoded to no valid code
        self._per_tick = sample_rate / TICK_HZ
        self._span = (_SPAN_TICKS + 1) * self._per_tick  # bump 0 to the last bump 3 can be
        self._min_sep = MIN_GAP_TICKS * self._per_tick / 2
        self._buf = np.zeros(0, dtype="<i2")
        self._buf_start = 0  # stream index of _buf[0]
        self._end = 0  # stream samples fed so far
        self._scanned = 1  # peaks are searched from here (a peak needs its left neighbour)
        self._peaks: list[tuple[float, int, tuple[float, ...]]] = []  # (position, height, times)
        self._prev_times: tuple[float, ...] = ()

    def feed(self, pcm: bytes, times: tuple[float, ...]) -> list[Mark]:
        """Add a chunk whose last sample was at `times` (one per clock); the groups completed."""
        chunk = np.frombuffer(pcm, dtype="<i2")
        if chunk.size == 0:
            return []
        start = self._end
        self._end += chunk.size
        if not self._peaks and int(chunk.max()) < _THRESHOLD and not self._tail_high():
            self._keep_tail(chunk)
            self._prev_times = times
            return []
        self._buf = np.concatenate((self._buf, chunk))
        self._find_peaks(start, times)
        self._prev_times = times
        marks = self._complete_groups()
        cut = max(0, self._scanned - 1 - self._buf_start)
        self._buf = self._buf[cut:]
        self._buf_start += cut
        return marks

    def _tail_high(self) -> bool:
        """Whether the last sample kept could still be a peak (it lacked a right neighbour)."""
        return bool(self._buf.size) and int(self._buf[-1]) >= _THRESHOLD

    def _keep_tail(self, chunk: np.ndarray) -> None:
        # A quiet chunk: keep its last samples as the next peak's left neighbours.
        self._buf = chunk[-2:]
        self._buf_start = self._end - self._buf.size
        self._scanned = max(self._scanned, self._end - 1)

    def _find_peaks(self, chunk_start: int, times: tuple[float, ...]) -> None:
        buf, base = self._buf, self._buf_start
        lo, hi = self._scanned - base, self._end - 1 - base  # the last sample lacks a right side
        if hi <= lo:
            return
        above = np.flatnonzero(buf[lo:hi] >= _THRESHOLD)
        if above.size:
            # Few samples pass the threshold (a handful per bump): check those in Python.
            first = lo + int(above[0]) - 1
            values = buf[first : lo + int(above[-1]) + 2].tolist()
            for j in above.tolist():
                left, top, right = values[lo + j - 1 - first : lo + j + 2 - first]
                if top < left or top <= right:
                    continue
                curve = left - 2 * top + right
                position = base + lo + j + (0.5 * (left - right) / curve if curve else 0.0)
                self._add_peak(position, top, chunk_start, times)
        self._scanned = self._end - 1

    def _add_peak(
        self, position: float, top: int, chunk_start: int, times: tuple[float, ...]
    ) -> None:
        # Timed by the chunk that held it: the previous one for its last sample (found only
        # once this chunk gave it a right neighbour).
        held_by, last = times, self._end - 1
        if position < chunk_start - 0.5:
            held_by, last = self._prev_times, chunk_start - 1
        timed = tuple(t - (last - position) / self.rate for t in held_by)
        if self._peaks and position - self._peaks[-1][0] < self._min_sep:
            if top > self._peaks[-1][1]:
                self._peaks[-1] = (position, top, timed)
            return
        self._peaks.append((position, top, timed))

    def _complete_groups(self) -> list[Mark]:
        marks: list[Mark] = []
        while self._peaks and self._peaks[0][0] + self._span < self._scanned:
            first = self._peaks[0][0]
            group = [p for p in self._peaks if p[0] <= first + self._span]
            del self._peaks[: len(group)]
            mark = self._decode(group)
            if mark is None:
                self.garbled += 1
            else:
                marks.append(mark)
        return marks

    def _decode(self, group: list[tuple[float, int, tuple[float, ...]]]) -> Mark | None:
        if len(group) != 4:
            return None
        times = group[0][2]
        gaps = []
        for (earlier, _, _), (later, _, _) in itertools.pairwise(group):
            gap = (later - earlier) / self._per_tick - MIN_GAP_TICKS
            if abs(gap - round(gap)) > _MAX_CODE_ERROR:
                return None
            gaps.append(round(gap))
        c, n, check = gaps
        # A group cut by inserted or lost audio reads as some other group now and then: the
        # check gap catches all but about one in 16 of those.
        if not (0 <= c < CALL_CODES and 0 <= n < NUMBERS and check == (c + n) % CHECKS):
            return None
        return c, n, times
