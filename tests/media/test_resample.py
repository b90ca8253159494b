"""The call's resampler: exact frame lengths, under a millisecond of delay, a clean passband
and a stopband that keeps aliasing out, frame after frame."""

from __future__ import annotations

import numpy as np
import pytest

from app.media.resample import PolyphaseResampler, SoxrResampler, resampler

RATES = [(16000, 24000), (24000, 16000), (8000, 16000), (16000, 48000), (48000, 16000)]


def _tone(freq: float, rate: int, seconds: float = 1.0, level: float = 0.5) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (level * 32767 * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def _run(converter: PolyphaseResampler, pcm: bytes, chunk: int) -> bytes:
    return b"".join(converter.process(pcm[i : i + chunk]) for i in range(0, len(pcm), chunk))


def _fit(pcm: bytes, freq: float, rate: int) -> tuple[float, float]:
    """(level of `freq` in the middle half, signal-to-residue in dB)."""
    y = np.frombuffer(pcm, dtype="<i2").astype(float)
    middle = slice(len(y) // 4, 3 * len(y) // 4)
    t = np.arange(len(y))[middle] / rate
    basis = np.stack([np.sin(2 * np.pi * freq * t), np.cos(2 * np.pi * freq * t)], axis=1)
    coef = np.linalg.lstsq(basis, y[middle], rcond=None)[0]
    fitted = basis @ coef
    residue = y[middle] - fitted
    return float(np.hypot(*coef)), float(10 * np.log10(np.mean(fitted**2) / np.mean(residue**2)))


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_every_frame_in_gives_a_whole_frame_out_from_the_first(in_rate: int, out_rate: int) -> None:
    converter = resampler(in_rate, out_rate)
    assert isinstance(converter, PolyphaseResampler)
    frame = _tone(440, in_rate, 0.02)
    lengths = {len(converter.process(frame)) for _ in range(50)}
    assert lengths == {out_rate * 2 // 50}  # no frame held back, none in blocks


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_chunk_sizes_do_not_change_the_output(in_rate: int, out_rate: int) -> None:
    pcm = _tone(700, in_rate, 0.5)
    whole = PolyphaseResampler(in_rate, out_rate).process(pcm)
    for chunk in (2, 146, 640, 3002):
        assert _run(PolyphaseResampler(in_rate, out_rate), pcm, chunk) == whole


@pytest.mark.parametrize(("in_rate", "out_rate"), RATES)
def test_the_delay_is_under_a_millisecond(in_rate: int, out_rate: int) -> None:
    impulse = np.zeros(in_rate // 10, dtype="<i2")
    impulse[in_rate // 100] = 20000  # at 10 ms
    out = np.frombuffer(resampler(in_rate, out_rate).process(impulse.tobytes()), dtype="<i2")  # type: ignore[union-attr]
    peak_ms = int(np.argmax(np.abs(out))) / out_rate * 1000
    assert 10.0 <= peak_ms <= 11.0


@pytest.mark.parametrize(("in_rate", "out_rate"), [(16000, 24000), (24000, 16000)])
@pytest.mark.parametrize("freq", [300.0, 1000.0, 3400.0, 6000.0])
def test_speech_frequencies_pass_clean_and_at_their_level(
    in_rate: int, out_rate: int, freq: float
) -> None:
    converter = PolyphaseResampler(in_rate, out_rate)
    level, snr_db = _fit(_run(converter, _tone(freq, in_rate), in_rate // 50), freq, out_rate)
    assert level == pytest.approx(0.5 * 32767, rel=0.02)  # within 0.2 dB
    assert snr_db >= 60


@pytest.mark.parametrize("freq", [8800.0, 10000.0, 11500.0])
def test_what_16_khz_cannot_carry_is_filtered_out_not_aliased(freq: float) -> None:
    converter = PolyphaseResampler(24000, 16000)
    out = np.frombuffer(_run(converter, _tone(freq, 24000), 480), dtype="<i2").astype(float)
    level_db = 10 * np.log10(np.mean(out[4000:12000] ** 2) / (0.5 * (0.5 * 32767) ** 2))
    assert level_db <= -55


def test_a_reset_drops_what_the_filter_holds() -> None:
    converter = PolyphaseResampler(24000, 16000)
    converter.process(_tone(1000, 24000, 0.02, level=1.0))
    converter.reset()
    assert converter.process(bytes(960)) == bytes(640)


def test_full_scale_audio_clips_instead_of_wrapping_around() -> None:
    square = np.where(np.sin(2 * np.pi * 50 * np.arange(24000) / 24000) >= 0, 32767, -32768)
    out = np.frombuffer(
        PolyphaseResampler(24000, 16000).process(square.astype("<i2").tobytes()), dtype="<i2"
    )
    # The filter overshoots a square wave's edges: past full scale it clips, never wraps.
    highs = out[1000:15000][np.sin(2 * np.pi * 50 * np.arange(1000, 15000) / 16000) > 0.5]
    assert highs.min() > 20000
    assert out.max() == 32767


def test_other_ratios_go_through_soxr() -> None:
    converter = resampler(44100, 16000)
    assert isinstance(converter, SoxrResampler)
    out = b"".join(converter.process(_tone(1000, 44100, 0.02)) for _ in range(50))
    _, snr_db = _fit(out, 1000, 16000)
    assert snr_db >= 60
    assert resampler(16000, 16000) is None
