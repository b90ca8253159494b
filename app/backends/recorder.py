"""The recorder backend: one WAV per call (and per participant when unmixed) plus a JSON sidecar.

Audio is buffered in memory and written about once a second in a worker thread, and after each
write the WAV header's sizes are patched, so a file is valid even if the process dies mid-call.
"""

from __future__ import annotations

import asyncio
import json
import re
import struct
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO

from app.backends.base import (
    AudioIn,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
)
from app.settings import Settings

FLUSH_BYTES_SECONDS = 1.0
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def create_backend(settings: Settings) -> RecorderBackend:
    return RecorderBackend(settings.recordings_dir)


def wav_header(sample_rate: int, data_bytes: int, channels: int = 1) -> bytes:
    """A 44-byte PCM16 WAV header for `data_bytes` of audio."""
    byte_rate = sample_rate * channels * 2
    return struct.pack(
        "<4sI4s4sIHHIIHH4sI",
        b"RIFF",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,
        channels,
        sample_rate,
        byte_rate,
        channels * 2,
        16,
        b"data",
        data_bytes,
    )


@dataclass
class _Track:
    path: Path
    pending: bytearray = field(default_factory=bytearray)
    written: int = 0
    file: BinaryIO | None = None


class RecorderBackend:
    """Writes what the caller says; plays nothing back."""

    sample_rate: int | None = None

    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._call: CallContext | None = None
        self._tracks: dict[str | None, _Track] = {}
        self._events: list[dict[str, Any]] = []
        self._flush_threshold = 0
        self._started = datetime.now(UTC)
        self._lock = asyncio.Lock()

    @property
    def paths(self) -> list[Path]:
        """The WAV files written so far."""
        return [t.path for t in self._tracks.values()]

    @property
    def sidecar_path(self) -> Path:
        assert self._call is not None
        return self._directory / f"{self._stem()}.json"

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self._call = call
        self._flush_threshold = int(call.stream.sample_rate * 2 * FLUSH_BYTES_SECONDS)
        await asyncio.to_thread(self._directory.mkdir, parents=True, exist_ok=True)
        output.report(BackendEvent("connected", {"backend": "recorder"}))

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is AudioIn:
            track = self._track(event)
            track.pending += event.pcm
            if len(track.pending) >= self._flush_threshold:
                await self._flush(track)
        else:
            self._note(event)

    def _track(self, frame: AudioIn) -> _Track:
        key = frame.participant_id if self._unmixed() else None
        track = self._tracks.get(key)
        if track is None:
            track = self._tracks[key] = _Track(self._track_path(key))
        return track

    def _note(self, event: InboundEvent) -> None:
        if isinstance(event, DtmfIn):
            self._events.append(
                {
                    "type": "dtmf",
                    "digit": event.digit,
                    "participant": event.participant_id,
                    "timestamp": event.timestamp,
                    "at": _now(),
                }
            )
        elif isinstance(event, TranscriptIn):
            self._events.append(
                {
                    "type": "transcript",
                    "text": event.text,
                    "final": event.final,
                    "participant": event.participant_id,
                    "confidence": event.confidence,
                    "at": _now(),
                }
            )
        elif isinstance(event, CallEventIn):
            self._events.append(
                {"type": "call_event", "event": event.name, **event.data, "at": _now()}
            )

    async def close(self) -> None:
        if self._call is None:
            return
        for track in self._tracks.values():
            await self._flush(track, closing=True)
        sidecar = json.dumps(self._metadata(), indent=2)
        await asyncio.to_thread(self.sidecar_path.write_text, sidecar, "utf-8")

    async def _flush(self, track: _Track, *, closing: bool = False) -> None:
        chunk = bytes(track.pending)
        track.pending.clear()
        async with self._lock:
            await asyncio.to_thread(self._write, track, chunk, closing)

    def _write(self, track: _Track, chunk: bytes, closing: bool) -> None:
        assert self._call is not None
        rate = self._call.stream.sample_rate
        if track.file is None:
            track.file = track.path.open("wb")
            track.file.write(wav_header(rate, 0))
        track.file.write(chunk)
        track.written += len(chunk)
        # Patch the sizes now, not only at close: the file stays playable after a crash.
        track.file.seek(0)
        track.file.write(wav_header(rate, track.written))
        track.file.seek(0, 2)
        track.file.flush()
        if closing:
            track.file.close()
            track.file = None

    def _metadata(self) -> dict[str, Any]:
        call = self._call
        assert call is not None
        return {
            "call_connection_id": call.call_connection_id,
            "correlation_id": call.correlation_id,
            "caller": call.caller,
            "callee": call.callee,
            "sample_rate": call.stream.sample_rate,
            "channel": call.channel,
            "started_at": self._started.isoformat(),
            "ended_at": _now(),
            "tracks": [
                {
                    "participant": key,
                    "file": t.path.name,
                    "bytes": t.written,
                    "seconds": t.written / (call.stream.sample_rate * 2),
                }
                for key, t in self._tracks.items()
            ],
            "events": self._events,
        }

    def _unmixed(self) -> bool:
        return self._call is not None and self._call.channel == "unmixed"

    def _stem(self) -> str:
        assert self._call is not None
        stamp = self._started.strftime("%Y%m%dT%H%M%SZ")
        return f"{stamp}_{_UNSAFE.sub('_', self._call.call_connection_id)[:80]}"

    def _track_path(self, participant: str | None) -> Path:
        suffix = "" if participant is None else "_" + _UNSAFE.sub("_", participant)[-60:]
        return self._directory / f"{self._stem()}{suffix}.wav"


def _now() -> str:
    return datetime.now(UTC).isoformat()
