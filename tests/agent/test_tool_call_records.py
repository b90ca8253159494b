"""Tool calls kept by a media session and written on the call's record (bounded, pure)."""

from __future__ import annotations

from datetime import timedelta

from app.backends.base import BackendEvent
from app.calls.models import MAX_TOOL_CALLS, CallRecord, ToolCall
from app.media.session_record import media_progress
from app.media.stats import MediaStats
from app.observability.metrics import Metrics, SessionMetrics


def tool_call_event(name: str = "lookup", outcome: str = "ok") -> BackendEvent:
    data = {
        "name": name,
        "tool": name,
        "arguments": '{"order_id":"1"}',
        "outcome": outcome,
        "result": '{"found":true}',
        "duration_ms": 12.5,
    }
    return BackendEvent("tool_call", data)


def test_a_tool_call_event_is_kept_with_its_fields() -> None:
    stats = MediaStats()
    stats.record_backend_event(tool_call_event())
    [call] = stats.tool_calls
    assert (call.name, call.outcome, call.duration_ms) == ("lookup", "ok", 12.5)
    assert call.arguments == '{"order_id":"1"}'


def test_the_record_rewrite_is_pure_and_keeps_earlier_sessions() -> None:
    stats = MediaStats()
    earlier = ToolCall(
        name="old",
        arguments="{}",
        outcome="ok",
        result="{}",
        duration_ms=1.0,
        time=stats.started_at - timedelta(minutes=1),
    )
    record = CallRecord(call_connection_id="call-1", tool_calls=[earlier])
    stats.record_backend_event(tool_call_event("lookup"))
    stats.record_backend_event(tool_call_event("end_call"))
    mutate = media_progress(record, stats)
    once = mutate(record)
    assert once is not None
    twice = mutate(once)
    assert twice is not None
    assert [c.name for c in once.tool_calls] == ["old", "lookup", "end_call"]
    assert twice.tool_calls == once.tool_calls


def test_tool_calls_are_bounded() -> None:
    stats = MediaStats()
    for _ in range(MAX_TOOL_CALLS + 5):
        stats.record_backend_event(tool_call_event())
    record = media_progress(CallRecord(call_connection_id="c"), stats)(None)
    assert record is not None
    assert len(stats.tool_calls) == len(record.tool_calls) == MAX_TOOL_CALLS


def test_tool_calls_are_counted_by_tool_and_outcome() -> None:
    metrics = Metrics()
    session = SessionMetrics(metrics, "openai")
    session.tool_called("lookup", "ok")
    session.tool_called("lookup", "error")
    session.tool_called("lookup", "error")
    body, _ = metrics.render()
    assert b'acs_bridge_tool_calls_total{outcome="error",tool="lookup"} 2.0' in body
