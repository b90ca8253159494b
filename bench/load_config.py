"""What one load-generator run does: shared by the coordinator and its worker processes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.acs_frames import Markers


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """N concurrent ACS calls against `url` for `seconds` (after `warmup_s` not measured)."""

    url: str
    calls: int = 10
    seconds: float = 10.0
    warmup_s: float = 2.0
    drain_s: float = 1.0
    sample_rate: int = 16000
    procs: int = 1
    deflate: bool = False
    connect_concurrency: int = 50
    connect_timeout_s: float = 10.0
    server_pid: int | None = None
    server_cpu: int | None = None  # the core the server is pinned to, for its busy time
    # "echo": the server sends each frame back (matched by marker); "audio": it sends audio of
    # its own (a model's), counted as frames out, matched to nothing; "listen": it only
    # listens (a voice agent that hears no speech), so nothing is expected back.
    expect: Literal["echo", "audio", "listen"] = "echo"
    # Helper processes on the load generator's cores (the fake Realtime service): their CPU
    # is reported and not counted as other load.
    helper_pids: tuple[int, ...] = ()
    # "audio": markers in the audio (bench.audio_markers), for paths that resample.
    markers: Markers = "bytes"

    def __post_init__(self) -> None:
        if self.calls < 1:
            raise ValueError("calls must be at least 1")
        if self.seconds <= 0 or self.warmup_s < 0 or self.drain_s < 0:
            raise ValueError("seconds must be > 0; warmup and drain >= 0")
        if self.sample_rate not in (16000, 24000):
            raise ValueError("sample_rate must be 16000 or 24000 (what ACS streams)")
        if not 1 <= self.procs <= self.calls:
            raise ValueError("procs must be between 1 and calls")
