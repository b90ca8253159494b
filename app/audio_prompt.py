"""The failover prompt: a short WAV file played to the caller before the failover action."""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

MAX_PROMPT_S = 30.0  # a prompt holds the caller before the action: keep it short


@dataclass(frozen=True, slots=True)
class Prompt:
    """16-bit mono PCM and its sample rate."""

    pcm: bytes
    sample_rate: int

    @property
    def duration_s(self) -> float:
        return len(self.pcm) / 2 / self.sample_rate


def load_prompt(path: Path) -> Prompt:
    """Read a 16-bit mono PCM WAV of at most MAX_PROMPT_S; ValueError in one line otherwise."""
    try:
        with wave.open(str(path), "rb") as wav:
            width, channels, rate = wav.getsampwidth(), wav.getnchannels(), wav.getframerate()
            frames = wav.getnframes()
            if width != 2 or channels != 1:
                raise ValueError(
                    f"{path}: {8 * width}-bit, {channels} channel(s); "
                    "the prompt must be 16-bit PCM mono (sox in.wav -b 16 -c 1 out.wav)"
                )
            if not 8000 <= rate <= 48000:
                raise ValueError(f"{path}: {rate} Hz; use a rate from 8000 to 48000 Hz")
            if frames / rate > MAX_PROMPT_S:
                raise ValueError(f"{path}: {frames / rate:.1f} s; keep it under {MAX_PROMPT_S:g} s")
            pcm = wav.readframes(frames)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (wave.Error, EOFError) as exc:
        raise ValueError(f"{path}: not a PCM WAV file ({exc})") from None
    except OSError as exc:
        raise ValueError(f"{path}: cannot be read ({exc.strerror})") from None
    return Prompt(pcm, rate)
