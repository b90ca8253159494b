"""Per-session counters, kept as plain ints on the hot path and flushed to state periodically."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.backends.base import BackendEvent
from app.calls.models import MAX_TOOL_CALLS, ToolCall, TranscriptEntry, utcnow
from app.media.latency import CallLatency

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
    transcripts: list[TranscriptEntry] = field(default_factory=list)
    turn_latencies_ms: list[float] = field(default_factory=list)
    latency: CallLatency = field(default_factory=CallLatency)
    tool_calls: list[ToolCall] = field(default_factory=list)
    lines: int = 0  # transcript lines and tool calls so far: a new one is written out soon

    def add_transcript(self, role: str, text: str, *, interrupted: bool = False) -> None:
        entry = TranscriptEntry(role=role, text=text, time=utcnow(), interrupted=interrupted)
        self.transcripts.append(entry)
        del self.transcripts[:-MAX_KEPT_TRANSCRIPTS]
        self.lines += 1

    def record_backend_event(self, event: BackendEvent) -> None:
        if event.kind == "transcript":
            role, text = event.data.get("role"), event.data.get("text")
            if isinstance(text, str) and text:
                interrupted = event.data.get("interrupted") is True
                self.add_transcript(str(role or "agent"), text, interrupted=interrupted)
        elif event.kind == "turn_latency":
            ms = event.data.get("ms")
            if isinstance(ms, int | float):
                self.turn_latencies_ms.append(float(ms))
                self.latency.response_started(float(ms))
                del self.turn_latencies_ms[:-MAX_KEPT_TRANSCRIPTS]
        elif event.kind == "tool_call":
            self.add_tool_call(event.data)

    def add_tool_call(self, data: Mapping[str, Any]) -> None:
        """Keep a voice agent's tool call (a `tool_call` event's data), the latest ones only."""
        duration = data.get("duration_ms")
        self.tool_calls.append(
            ToolCall(
                name=str(data.get("name", "")),
                arguments=str(data.get("arguments", "")),
                outcome=str(data.get("outcome", "error")),
                result=str(data.get("result", "")),
                duration_ms=float(duration) if isinstance(duration, int | float) else 0.0,
                time=utcnow(),
            )
        )
        del self.tool_calls[:-MAX_TOOL_CALLS]
        self.lines += 1
