"""Latency per direction from the markers, measured outside the service.

Three clocks see each marker: the load generator when it sends it, the fake behind the service
(the model or the downstream) when it receives it and when it sends it back, and the load
generator again when it comes back. All are `time.monotonic()` on one machine
(CLOCK_MONOTONIC, shared by every process), so their differences are latencies:

    in    = fake received - load generator sent       (the service's inbound path)
    out   = load generator received - fake sent back  (the service's outbound path)
    round = load generator received - load generator sent

Each includes its loopback transit and the receiving process's wake-up, and neither fake's own
handling (it is between its two times). A marker is keyed by (call code, number): byte markers
carry the call's index and the frame's seq; audio markers a code (the index % 128) and a
number modulo 128, resolved to the latest group of that code and residue sent by then: a
latency beyond 5.12 s aliases (a marker then resolves to one already seen, and is counted as
`aliased` instead).
"""

from __future__ import annotations

import bisect
import contextlib
import os
import signal
import time
from array import array
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from bench.audio_markers import CALL_CODES, NUMBERS, call_code

# A marker is taken to have been sent by then if its send time is at most this much after
# the time it was seen (the clocks agree; this only absorbs the rounding of a peak's time).
_TOLERANCE_S = 0.002
_DUMP_TIMEOUT_S = 5.0


@dataclass(frozen=True, slots=True)
class MarkerLatency:
    """Samples in ms per direction ("in", "out", "round"), and counts of markers."""

    samples_ms: dict[str, np.ndarray]
    counts: dict[str, int]


def marker_latency(
    sends: np.ndarray, receipts: np.ndarray, fake: np.ndarray | None, *, audio: bool, calls: int
) -> MarkerLatency | None:
    """Join the rows (see bench.call_stream.WorkerResult and the fakes' `--marks` files);
    None when audio markers cannot tell the calls apart (more than 128 calls)."""
    if audio and calls > CALL_CODES:
        return None
    sent = _Sent(sends.reshape(-1, 4), audio)
    back_of: dict[tuple[int, int], float] = {}
    inbound: list[float] = []
    aliased = 0  # seen twice as the same marker: a latency beyond the numbers' period
    for code, key, t_in, t_out in fake.reshape(-1, 4) if fake is not None else ():
        found = sent.resolve(int(code), int(key), t_in)
        if found is not None:
            number, t_sent = found
            if (int(code), number) in back_of:
                aliased += 1
                continue
            back_of[int(code), number] = t_out
            if sent.counted(int(code), number):
                inbound.append(t_in - t_sent)
    outbound: list[float] = []
    round_trip: list[float] = []
    misrouted = 0
    heard: set[tuple[int, int]] = set()
    for call, code, key, t_back in receipts.reshape(-1, 4):
        if int(code) != sent.code(int(call)):
            misrouted += 1
            continue
        found = sent.resolve(int(code), int(key), t_back)
        if found is None or not sent.counted(int(code), found[0]):
            continue
        number, t_sent = found
        if (int(code), number) in heard:
            aliased += 1
            continue
        heard.add((int(code), number))
        round_trip.append(t_back - t_sent)
        if (t_out := back_of.get((int(code), number))) is not None:
            outbound.append(t_back - t_out)
    samples = {
        "in": np.asarray(inbound) * 1000.0,
        "out": np.asarray(outbound) * 1000.0,
        "round": np.asarray(round_trip) * 1000.0,
    }
    counts = {
        "sent": sent.count,
        "seen_by_fake": len(inbound),
        "back": len(round_trip),
        "misrouted": misrouted,
        "aliased": aliased,
    }
    return MarkerLatency({k: v for k, v in samples.items() if v.size}, counts)


def write_marks(path: Path, rows: array[float], width: int) -> None:
    """Write a fake's marker rows as a numpy array, atomically (never half a file read)."""
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as file:
        np.save(file, np.frombuffer(rows, dtype=np.float64).reshape(-1, width))
    os.replace(partial, path)


def fake_marks_reader(pid: int, path: Path) -> Callable[[], np.ndarray | None]:
    """A function that asks the fake `pid` for its markers (SIGUSR1) and reads them from
    `path`; None when it wrote none in time."""

    def read() -> np.ndarray | None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            return None
        deadline = time.monotonic() + _DUMP_TIMEOUT_S
        while time.monotonic() < deadline:
            if path.exists():
                rows: np.ndarray = np.load(path)
                return rows
            time.sleep(0.02)
        return None

    return read


class _Sent:
    """The markers sent, looked up by code and (residue of) number; those of the measured
    window are counted, the others only keep a late one from being taken for a counted one."""

    def __init__(self, rows: np.ndarray, audio: bool) -> None:
        self._audio = audio
        self._counted = {
            (self.code(int(call)), int(number)) for call, number, _, counted in rows if counted
        }
        self.count = len(self._counted)
        # (code, residue) -> send times and numbers, in send order
        self._times: defaultdict[tuple[int, int], list[float]] = defaultdict(list)
        self._numbers: defaultdict[tuple[int, int], list[int]] = defaultdict(list)
        for call, number, at, _ in sorted(rows.tolist(), key=lambda row: row[2]):
            key = (self.code(int(call)), self._residue(int(number)))
            self._times[key].append(at)
            self._numbers[key].append(int(number))

    def code(self, call: int) -> int:
        return call_code(call) if self._audio else call

    def counted(self, code: int, number: int) -> bool:
        return (code, number) in self._counted

    def _residue(self, number: int) -> int:
        return number % NUMBERS if self._audio else number

    def resolve(self, code: int, key: int, seen_at: float) -> tuple[int, float] | None:
        """(number, send time) of the latest marker matching (code, key) sent by `seen_at`."""
        times = self._times.get((code, key))
        if not times:
            return None
        i = bisect.bisect_right(times, seen_at + _TOLERANCE_S) - 1
        if i < 0:
            return None
        return self._numbers[code, key][i], times[i]
