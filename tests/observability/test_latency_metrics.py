"""Latency samples reach /metrics as Prometheus histograms, counted in bulk at a flush."""

from __future__ import annotations

from app.observability.metrics import Metrics


def test_samples_are_counted_into_cumulative_buckets_with_their_sum() -> None:
    metrics = Metrics()
    metrics.observe_latency("openai", [0.0004, 0.0015, 0.003], [0.03], [0.6])
    metrics.observe_latency("openai", [0.0004], [], [])
    text = metrics.render()[0].decode()
    for line in (
        'acs_bridge_bridge_latency_seconds_bucket{backend="openai",direction="in",le="0.0005"} 2.0',
        'acs_bridge_bridge_latency_seconds_bucket{backend="openai",direction="in",le="0.002"} 3.0',
        'acs_bridge_bridge_latency_seconds_bucket{backend="openai",direction="in",le="+Inf"} 4.0',
        'acs_bridge_bridge_latency_seconds_count{backend="openai",direction="in"} 4.0',
        'acs_bridge_bridge_latency_seconds_bucket{backend="openai",direction="out",le="0.02"} 0.0',
        'acs_bridge_bridge_latency_seconds_bucket{backend="openai",direction="out",le="0.04"} 1.0',
        'acs_bridge_turn_latency_seconds_bucket{backend="openai",le="0.75"} 1.0',
        'acs_bridge_turn_latency_seconds_sum{backend="openai"} 0.6',
    ):
        assert line in text
