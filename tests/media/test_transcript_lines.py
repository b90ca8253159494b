"""Transcript lines kept by a media session: barge-ins marked, and each new line (or tool call)
counted so the session writes it out at its next tick rather than with the periodic flush."""

from __future__ import annotations

from app.backends.base import BackendEvent
from app.calls.models import CallRecord
from app.media.session_record import media_progress
from app.media.stats import MediaStats


def test_an_interrupted_agent_line_is_marked_on_the_record() -> None:
    stats = MediaStats()
    stats.record_backend_event(BackendEvent("transcript", {"role": "caller", "text": "Hi"}))
    stats.record_backend_event(
        BackendEvent("transcript", {"role": "agent", "text": "Hello, how", "interrupted": True})
    )
    record = media_progress(CallRecord(call_connection_id="c"), stats)(None)
    assert record is not None
    assert [(e.role, e.text, e.interrupted) for e in record.transcript] == [
        ("caller", "Hi", False),
        ("agent", "Hello, how", True),
    ]


def test_each_line_and_tool_call_is_counted() -> None:
    stats = MediaStats()
    stats.add_transcript("caller", "one")
    stats.record_backend_event(BackendEvent("transcript", {"role": "agent", "text": ""}))
    stats.record_backend_event(
        BackendEvent("tool_call", {"name": "end_call", "outcome": "ok", "duration_ms": 1})
    )
    assert stats.lines == 2  # an empty line is no line
