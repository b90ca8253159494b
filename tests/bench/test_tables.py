"""Reports and summary tables of echo and audio ("realtime") runs, without any I/O."""

from __future__ import annotations

import dataclasses
from array import array
from typing import Literal

from bench.bridge_metrics import quantile
from bench.call_stream import WorkerResult
from bench.load_config import LoadConfig
from bench.load_report import LoadReport, ServerSamples, build_report
from bench.procstat import ProcSample
from bench.tables import (
    Run,
    comparison_table,
    latency_table,
    median_cpu_us_per_frame,
    medians_table,
)


def _report(
    cpu_s: float, expect: Literal["echo", "audio"] = "echo", *, back: int = 1000
) -> LoadReport:
    config = LoadConfig(
        url="ws://x/ws", calls=2, seconds=10.0, warmup_s=2.0, server_pid=1, expect=expect
    )
    result = WorkerResult(calls_connected=2, frames_sent=1000)
    if expect == "echo":
        result.frames_echoed = back
    else:
        result.audio_out = back
        result.first_audio_ms = array("d", [300.0, 320.0]).tobytes()
    samples = ServerSamples(
        ProcSample(0.0, 10 << 20), ProcSample(1.0, 11 << 20), ProcSample(1.0 + cpu_s, 12 << 20)
    )
    return build_report(config, [result], 10.0, 10.0, samples)


def test_audio_runs_count_the_models_frames_and_have_no_echo_latency() -> None:
    report = _report(0.2, "audio", back=995)
    assert report.frames_out == 995
    assert report.lost == 5
    assert report.server is not None
    assert round(report.server.cpu_us_per_frame, 6) == round(1e6 * 0.2 / 1995, 6)
    assert report.passed  # 0.5 % short: edge effects
    assert not report.audio_started_late
    assert not _report(0.2, "audio", back=900).passed
    assert "| n/a | n/a |" in comparison_table([Run("realtime", report)], None)


def test_summary_gives_medians_and_ratios_to_floor_baseline_and_service() -> None:
    runs = [
        Run("floor", _report(0.100)),
        Run("baseline", _report(0.120)),
        Run("service", _report(0.090)),
        Run("realtime", _report(0.270, "audio")),
        Run("floor", _report(0.110)),
        Run("baseline", _report(0.130)),
        Run("service", _report(0.100)),
        Run("realtime", _report(0.290, "audio")),
    ]
    names = ("floor", "baseline", "service", "realtime")
    medians = {name: median_cpu_us_per_frame(runs, name) for name in names}
    table = medians_table(runs, medians)
    header = "| server | runs | CPU us/frame (median) | min - max |"
    assert header + " vs floor | vs baseline | vs service |" in table
    # service: 47.5 us/frame median, floor 52.5, baseline 62.5
    assert "| service | 2 | 47.5 | 45.0 - 50.0 | 0.90x | 0.76x | 1.00x |" in table
    assert "| realtime | 2 | 140.0 | 135.0 - 145.0 | 2.67x | 2.24x | 2.95x |" in table


def test_latency_table_gives_each_servers_markers_histograms_and_first_audio() -> None:
    realtime = dataclasses.replace(
        _report(0.27, "audio"),
        bridge_latency_ms={"in": [0.4, 3.0, 900.0]},
        external_ms={"in": [38.0, 42.5, 500], "out": [30.0, 50.0, 500], "round": [70, 90, 500]},
        marks={"sent": 500, "back": 500},
    )
    table = latency_table([Run("echo", _report(0.1)), Run("realtime", realtime)])
    assert "| echo | 1 | - | - | - | - | - | - | - |" in table  # nothing measured
    assert (
        "| realtime | 1 | 38.00 / 42.50 | 30.00 / 50.00 | 70.00 / 90.00 | 0.40 / 3.00 | - | "
        "310.0 / 319.8 | 500/500 |"
    ) in table


def test_bridge_quantiles_interpolate_within_buckets_like_prometheus() -> None:
    buckets = [(0.001, 50.0), (0.002, 90.0), (0.02, 100.0), (float("inf"), 100.0)]
    assert quantile(0.5, buckets) == 0.001
    assert round(quantile(0.7, buckets), 6) == 0.0015
    assert round(quantile(0.99, buckets), 6) == 0.0182
