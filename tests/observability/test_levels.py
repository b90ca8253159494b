from __future__ import annotations

import math

import numpy as np

from app.observability.levels import LevelMeter, pcm16_rms


def pcm(samples: np.ndarray) -> bytes:
    return samples.astype("<i2").tobytes()


def test_silence_is_zero() -> None:
    assert pcm16_rms(bytes(640)) == 0.0
    assert pcm16_rms(b"") == 0.0


def test_a_full_scale_square_wave_is_one() -> None:
    square = np.where(np.arange(320) % 2 == 0, 32767, -32768)
    assert math.isclose(pcm16_rms(pcm(square)), 1.0, abs_tol=1e-4)


def test_a_half_scale_sine_is_about_0_35() -> None:
    sine = 16384 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)
    assert math.isclose(pcm16_rms(pcm(sine)), 0.5 / math.sqrt(2), abs_tol=1e-3)


def test_an_odd_trailing_byte_is_ignored() -> None:
    assert pcm16_rms(pcm(np.full(10, 1000)) + b"\x7f") == pcm16_rms(pcm(np.full(10, 1000)))


def test_the_meter_reports_once_per_interval() -> None:
    now = [0.0]
    meter = LevelMeter(interval_s=0.2, clock=lambda: now[0])
    frame = pcm(np.full(320, 8000))
    assert meter.measure(frame) is not None
    now[0] = 0.1
    assert meter.measure(frame) is None
    now[0] = 0.2
    level = meter.measure(frame)
    assert level is not None
    assert math.isclose(level, 8000 / 32768, rel_tol=1e-4)
