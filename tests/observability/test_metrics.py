from __future__ import annotations

from dataclasses import dataclass

from app.observability.metrics import Metrics, SessionMetrics

EXPECTED_NAMES = (
    "acs_bridge_calls_active",
    "acs_bridge_calls_ended_total",
    "acs_bridge_media_sessions_active",
    "acs_bridge_media_sessions_total",
    "acs_bridge_media_frames_total",
    "acs_bridge_media_malformed_frames_total",
    "acs_bridge_media_dropped_frames_total",
    "acs_bridge_media_outbound_queue_frames_bucket",
    "acs_bridge_backend_errors_total",
    "acs_bridge_backend_reconnects_total",
    "acs_bridge_http_requests_total",
    "acs_bridge_http_request_duration_seconds_bucket",
)


@dataclass
class Counts:
    frames_in: int = 0
    frames_out: int = 0
    malformed: int = 0
    dropped: int = 0
    backend_errors: int = 0


def value(metrics: Metrics, name: str, **labels: str) -> float:
    sample = metrics.registry.get_sample_value(name, labels)
    return 0.0 if sample is None else sample


def populated() -> Metrics:
    metrics = Metrics()
    metrics.call_started()
    metrics.call_ended("completed")
    metrics.media_session_started()
    metrics.add_frames(in_=1, out=1, malformed=1, dropped=1)
    metrics.observe_outbound_queue(3)
    metrics.backend_error("echo")
    metrics.backend_reconnect("websocket")
    metrics.observe_http("GET", "/healthz", 200, 0.001)
    return metrics


def test_exposition_names_every_metric() -> None:
    body, content_type = populated().render()
    text = body.decode()
    assert content_type.startswith("text/plain")
    for name in EXPECTED_NAMES:
        assert name in text, name


def test_exposition_is_openmetrics_when_the_scraper_asks() -> None:
    body, content_type = populated().render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.rstrip().endswith(b"# EOF")


def test_two_instances_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.add_frames(in_=5)
    assert value(first, "acs_bridge_media_frames_total", direction="in") == 5
    assert value(second, "acs_bridge_media_frames_total", direction="in") == 0
    assert first.registry is not second.registry


def test_add_frames_adds_batched_counts() -> None:
    metrics = Metrics()
    metrics.add_frames(in_=50, out=48, malformed=2, dropped=1)
    metrics.add_frames(in_=50, out=50)
    assert value(metrics, "acs_bridge_media_frames_total", direction="in") == 100
    assert value(metrics, "acs_bridge_media_frames_total", direction="out") == 98
    assert value(metrics, "acs_bridge_media_malformed_frames_total") == 2
    assert value(metrics, "acs_bridge_media_dropped_frames_total") == 1


def test_call_end_counts_the_outcome_and_leaves_the_active_gauge() -> None:
    metrics = Metrics()
    metrics.call_started()
    metrics.call_started()
    metrics.call_ended("completed")
    metrics.call_ended("failed", was_active=False)
    assert value(metrics, "acs_bridge_calls_active") == 1
    assert value(metrics, "acs_bridge_calls_ended_total", outcome="completed") == 1
    assert value(metrics, "acs_bridge_calls_ended_total", outcome="failed") == 1


def test_session_flush_adds_only_what_grew_since_the_last_flush() -> None:
    metrics = Metrics()
    session = SessionMetrics(metrics, backend="echo")
    counts = Counts(frames_in=50, frames_out=45, malformed=1)
    session.flush(counts)
    counts.frames_in, counts.frames_out, counts.dropped, counts.backend_errors = 100, 95, 3, 2
    session.flush(counts, outbound_queue=4)
    assert value(metrics, "acs_bridge_media_frames_total", direction="in") == 100
    assert value(metrics, "acs_bridge_media_frames_total", direction="out") == 95
    assert value(metrics, "acs_bridge_media_malformed_frames_total") == 1
    assert value(metrics, "acs_bridge_media_dropped_frames_total") == 3
    assert value(metrics, "acs_bridge_backend_errors_total", backend="echo") == 2
    assert value(metrics, "acs_bridge_media_outbound_queue_frames_count") == 1


def test_session_counts_itself_once_however_often_it_ends() -> None:
    metrics = Metrics()
    session = SessionMetrics(metrics, backend="echo")
    session.started()
    session.started()
    assert value(metrics, "acs_bridge_media_sessions_active") == 1
    session.ended(Counts(frames_in=10))
    session.ended()
    assert value(metrics, "acs_bridge_media_sessions_active") == 0
    assert value(metrics, "acs_bridge_media_sessions_total") == 1
    assert value(metrics, "acs_bridge_media_frames_total", direction="in") == 10
