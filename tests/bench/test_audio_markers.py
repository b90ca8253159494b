"""The audio markers survive resampling both ways and say which call and when, without I/O."""

from __future__ import annotations

import base64

import numpy as np
import soxr

from bench.audio_markers import (
    CALL_CODES,
    NUMBERS,
    PulseDecoder,
    first_bump_offset,
    marked_frames_b64,
)
from bench.marker_latency import marker_latency

FRAME_S = 0.02


def _call_audio(call: int, frames: int = 2 * NUMBERS) -> list[np.ndarray]:
    pcm = [base64.b64decode(frame) for frame in marked_frames_b64(call, 16000, 320)]
    return [np.frombuffer(pcm[seq % len(pcm)], dtype="<i2") for seq in range(frames)]


def test_every_group_is_decoded_through_resampling_both_ways_in_odd_chunks() -> None:
    up = soxr.ResampleStream(16000, 24000, 1, dtype="int16", quality="HQ")
    down = soxr.ResampleStream(24000, 16000, 1, dtype="int16", quality="HQ")
    at_24k, at_16k = PulseDecoder(24000), PulseDecoder(16000)
    heard: list[tuple[int, int]] = []
    back: list[tuple[int, int]] = []
    pending = b""
    for seq, frame in enumerate(_call_audio(CALL_CODES - 1, 2 * NUMBERS + 30)):
        pending += up.resample_chunk(frame).tobytes()
        while len(pending) >= 1234:  # chunks that cut groups anywhere
            chunk, pending = pending[:1234], pending[1234:]
            heard += [(c, n) for c, n, _ in at_24k.feed(chunk, (seq * FRAME_S,))]
            out = down.resample_chunk(np.frombuffer(chunk, dtype="<i2")).tobytes()
            back += [(c, n) for c, n, _ in at_16k.feed(out, (seq * FRAME_S,))]
    assert heard[: NUMBERS + 10] == [(CALL_CODES - 1, n % NUMBERS) for n in range(NUMBERS + 10)]
    assert back[: NUMBERS + 10] == heard[: NUMBERS + 10]
    assert at_24k.garbled == at_16k.garbled == 0


def test_bump_zero_is_timed_by_the_chunk_that_held_it() -> None:
    decoder = PulseDecoder(16000)
    marks = []
    for seq, frame in enumerate(_call_audio(5, 8)):
        sent = 100.0 + (seq + 1) * FRAME_S  # each frame leaves when its last sample is due
        marks += decoder.feed(frame.tobytes(), (sent, sent + 1.0))
    assert [(code, number) for code, number, _ in marks] == [(5, 0), (5, 1), (5, 2), (5, 3)]
    for group, (_, _, (first, second)) in enumerate(marks):
        due = 100.0 + 2 * group * FRAME_S + first_bump_offset(16000) / 16000
        assert abs(first - due) < 1e-4
        assert abs(second - first - 1.0) < 1e-9


def test_a_group_missing_a_bump_is_counted_as_garbled() -> None:
    frames = _call_audio(9, 6)
    frames[2] = frames[2].copy()
    frames[2][:16] = 0  # group 1 lost its bump 0: three bumps left
    decoder = PulseDecoder(16000)
    marks = [m for seq, f in enumerate(frames) for m in decoder.feed(f.tobytes(), (seq * 0.02,))]
    assert [number for _, number, _ in marks] == [0, 2]
    assert decoder.garbled == 1


def test_a_group_stretched_by_inserted_audio_is_not_read_as_another() -> None:
    frames = _call_audio(9, 6)
    pcm = np.concatenate(frames)
    # 5 ticks of silence inserted between bumps 0 and 1 of group 1: code 9 would read as 14.
    start = 2 * 320 + 8 + 8
    stretched = np.concatenate((pcm[:start], np.zeros(10, dtype="<i2"), pcm[start:]))
    decoder = PulseDecoder(16000)
    marks = decoder.feed(stretched.tobytes(), (1.0,))
    assert [(code, number) for code, number, _ in marks] == [(9, 0), (9, 2)]
    assert decoder.garbled == 1


def test_markers_join_into_latency_per_direction() -> None:
    # Call 3 sent groups every 40 ms; the fake saw each 5 ms later and sent it back 1 ms after
    # that; the caller heard it 7 ms later: numbers arrive modulo NUMBERS.
    count = NUMBERS + 6
    sends = np.array([(3, n, 10.0 + 0.04 * n, 1.0) for n in range(count)], dtype=float)
    fake = np.array([(3, n % NUMBERS, 10.005 + 0.04 * n, 10.006 + 0.04 * n) for n in range(count)])
    receipts = np.array([(3, 3, n % NUMBERS, 10.013 + 0.04 * n) for n in range(count)])
    result = marker_latency(sends, receipts, fake, audio=True, calls=4)
    assert result is not None
    assert result.counts == {
        "sent": count,
        "seen_by_fake": count,
        "back": count,
        "misrouted": 0,
        "aliased": 0,
    }
    for direction, expected in (("in", 5.0), ("out", 7.0), ("round", 13.0)):
        assert np.allclose(result.samples_ms[direction], expected)


def test_a_group_sent_after_the_window_is_not_taken_for_one_in_it() -> None:
    # Group NUMBERS (after the window) has the residue of group 0: seen, it must not count as
    # a 5.12 s latency of group 0.
    sends = np.array(
        [(1, n, 0.04 * n, float(n < NUMBERS)) for n in range(NUMBERS + 1)], dtype=float
    )
    fake = np.array([(1, 0, 0.001, 0.002), (1, 0, 0.04 * NUMBERS + 0.001, 0.0)])
    result = marker_latency(sends, np.zeros((0, 4)), fake, audio=True, calls=2)
    assert result is not None
    assert result.counts["sent"] == NUMBERS
    assert np.allclose(result.samples_ms["in"], [1.0])


def test_audio_of_another_call_is_misrouted() -> None:
    sends = np.array([(0, 0, 1.0, 1.0), (1, 0, 1.0, 1.0)], dtype=float)
    receipts = np.array([(0, 1, 0, 1.01)])  # call 0 heard call 1's group
    result = marker_latency(sends, receipts, None, audio=True, calls=2)
    assert result is not None
    assert result.counts["misrouted"] == 1
    assert "round" not in result.samples_ms
