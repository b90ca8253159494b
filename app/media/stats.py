"""Per-session counters, kept as plain ints on the hot path and flushed to state periodically."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from app.backends.base import BackendEvent
from app.calls.models import utcnow

MAX_KEPT_TRANSCRIPTS = 200


@dataclass(slots=True)
class MediaStats:
    frames_in: int = 0
    frames_out: int = 0
    malformed: int = 0
    dropped: int = 0
    backend_errors: int = 0
    sample_rate: int | None = None
    dtmf: str = ""
    started_at: datetime = field(default_factory=utcnow)
    transcripts: list[tuple[str, str, datetime]] = field(default_factory=list)
    turn_latencies_ms: list[float] = field(default_factory=list)

    def add_transcript(self, role: str, text: str) -> None:
        self.transcripts.append((role, text, utcnow()))
        del self.transcripts[:-MAX_KEPT_TRANSCRIPTS]

    def record_backend_event(self, event: BackendEvent) -> None:
        if event.kind == "transcript":
            role, text = event.data.get("role"), event.data.get("text")
            if isinstance(text, str) and text:
                self.add_transcript(str(role or "agent"), text)
        elif event.kind == "turn_latency":
            ms = event.data.get("ms")
            if isinstance(ms, int | float):
                self.turn_latencies_ms.append(float(ms))
                del self.turn_latencies_ms[:-MAX_KEPT_TRANSCRIPTS]
