"""The far end of a media stream when a person speaks (the console's softphone), not a script.

`MediaStream` asks a `LiveCaller` for each 20 ms tick what the caller says, and hands it what
the service sends back; `MediaClient.live_caller` routes one caller's calls to one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol


@dataclass(frozen=True, slots=True)
class CallerFrame:
    """What the caller says in one 20 ms tick: PCM at the stream's rate, and DTMF tones."""

    pcm: bytes | None = None  # exactly one frame; None: nothing came, silence is sent
    dtmf: str = ""  # tones pressed since the last tick, one DtmfData message each


@dataclass(frozen=True, slots=True)
class Heard:
    """Something the service sent to the caller: a frame of audio, or a StopAudio."""

    kind: Literal["audio", "stop"]
    pcm: bytes = b""  # at the stream's rate


class LiveCaller(Protocol):
    """A caller who talks in real time: never blocks, called on the stream's schedule."""

    def frame(self, sample_rate: int, frame_bytes: int) -> CallerFrame:
        """The next 20 ms of the caller, at `sample_rate` (the call's rate)."""
        ...

    def hear(self, heard: Heard) -> None:
        """The service's audio or StopAudio, as it arrives."""
        ...

    def stream_stopped(self) -> None:
        """The stream's socket closed for good: streaming stopped, the call ended, or the
        service closed it."""
        ...
