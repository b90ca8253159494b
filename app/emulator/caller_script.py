"""What the far end of a media stream says, tick by tick: a `StreamScript` (canned audio, DTMF,
hostile frames) or a `LiveCaller` (a person at the console's softphone), each turned into one
`Tick` per 20 ms. Pure: `MediaStream` puts the ticks on the socket."""

from __future__ import annotations

import wave
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Literal

import numpy as np
import soxr

from app.emulator.live_caller import LiveCaller

FRAME_MS = 20
TONE_HZ = 440.0  # a whole number of cycles per second: a 1 s tone loops without a click

Sound = Literal["speech", "silence", "tone"]


def bundled_speech(sample_rate: int = 16000) -> bytes:
    """The project's short speech recording as PCM16 mono at `sample_rate`."""
    path = resources.files("app").joinpath("assets/caller-16k.wav")
    with path.open("rb") as raw, wave.open(raw) as wav:
        pcm = wav.readframes(wav.getnframes())
        rate = wav.getframerate()
    if rate == sample_rate:
        return bytes(pcm)
    samples = np.frombuffer(pcm, dtype="<i2")
    out = soxr.resample(samples, rate, sample_rate)
    return np.asarray(out, dtype="<i2").tobytes()


def tone(sample_rate: int, seconds: float, freq: float = TONE_HZ, amplitude: float = 0.3) -> bytes:
    """A sine tone as PCM16 mono."""
    t = np.arange(int(sample_rate * seconds)) / sample_rate
    return (np.sin(2 * np.pi * freq * t) * amplitude * 32767).astype("<i2").tobytes()


@dataclass
class StreamScript:
    """What the far end sends."""

    audio: bytes | None = None  # PCM at the stream's rate; None: `sound` at the stream's rate
    sound: Sound = "speech"  # with no `audio`: the bundled speech, silence, or a 440 Hz tone
    loop: bool = True
    participants: Sequence[str | None] = (None,)
    dtmf: Sequence[tuple[int, str]] = ()  # (frame index, tone); several at one index go in order
    injected: Sequence[tuple[int, str | bytes]] = ()  # (frame index, raw message): bad frames
    max_frames: int | None = None
    silent_after_audio: bool = False


@dataclass(frozen=True, slots=True)
class Tick:
    """What goes on the socket in one 20 ms tick, in order: raw messages, DTMF, audio."""

    pcm: bytes
    silent: bool
    dtmf: Sequence[str] = ()
    raw: Sequence[str | bytes] = ()


def script_ticks(script: StreamScript, sample_rate: int, size: int) -> Iterator[Tick]:
    """The ticks of `script` at `sample_rate`, `size` bytes of audio each."""
    # Prepared now, before the first tick's time is taken: loading the speech takes a while.
    audio = script.audio if script.audio is not None else _sound(script.sound, sample_rate)
    frames = [audio[i : i + size] for i in range(0, len(audio) - size + 1, size)]
    if not frames and not (script.sound == "silence" and script.audio is None):
        frames = [bytes(size)]
    dtmf: dict[int, list[str]] = {}
    for at, digit in script.dtmf:
        dtmf.setdefault(at, []).append(digit)
    injected: dict[int, list[str | bytes]] = {}
    for at, raw in script.injected:
        injected.setdefault(at, []).append(raw)
    silence_only = not frames
    return _scripted(script, frames, dtmf, injected, size, silence_only)


def live_ticks(live: LiveCaller, sample_rate: int, size: int) -> Iterator[Tick]:
    """A live caller's ticks: its audio, or a silent frame when nothing came in time."""
    silence = bytes(size)
    while True:
        said = live.frame(sample_rate, size)
        pcm = said.pcm
        yield Tick(silence if pcm is None else pcm, pcm is None, tuple(said.dtmf))


def _sound(sound: Sound, sample_rate: int) -> bytes:
    if sound == "tone":
        return tone(sample_rate, 1.0)
    if sound == "silence":
        return b""
    return bundled_speech(sample_rate)


def _scripted(
    script: StreamScript,
    frames: list[bytes],
    dtmf: dict[int, list[str]],
    injected: dict[int, list[str | bytes]],
    size: int,
    silence_only: bool,
) -> Iterator[Tick]:
    index = 0
    while script.max_frames is None or index < script.max_frames:
        ended = index >= len(frames) and not script.loop
        if ended and not script.silent_after_audio and not silence_only:
            return
        # Silence is continuous, as ACS streams it: frames flagged `silent`.
        silent = silence_only or ended
        pcm = bytes(size) if silent else frames[index % len(frames)]
        yield Tick(pcm, silent, dtmf.get(index, ()), injected.get(index, ()))
        index += 1
