"""Markdown tables of benchmark results."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.load_report import LoadReport


@dataclass(frozen=True, slots=True)
class Run:
    """One load run against one server."""

    server: str
    report: LoadReport


def comparison_table(runs: Sequence[Run], floor_us_per_frame: float | None) -> str:
    """One row per run, CPU per frame also as a ratio to the floor's (median) CPU per frame."""
    header = (
        "| server | calls | frames in+out | loss % | echo p50 ms | echo p99 ms | "
        "CPU us/frame | vs floor | server CPU % | RSS/call KiB | sender slip p99 ms | verdict |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|"
    )
    rows = [header]
    for run in runs:
        rep, srv = run.report, run.report.server
        ratio = "-"
        if srv is not None and floor_us_per_frame:
            ratio = f"{srv.cpu_us_per_frame / floor_us_per_frame:.2f}x"
        p50, p99 = _latency(rep)
        rows.append(
            f"| {run.server} | {rep.calls_connected}/{rep.calls} | "
            f"{rep.frames_sent}+{rep.frames_out} | {rep.loss_pct:.3f} | {p50} | {p99} | "
            f"{_num(srv.cpu_us_per_frame if srv else None)} | {ratio} | "
            f"{_num(srv.cpu_pct if srv else None, 0)} | "
            f"{_num(srv.rss_per_call_kib if srv else None, 0)} | {rep.slip_ms.p99:.2f} | "
            f"{_verdict(rep)} |"
        )
    return "\n".join(rows)


def find_max_table(runs: Sequence[Run]) -> str:
    """Every step of a --find-max search."""
    header = (
        "| server | calls | verdict | loss % | echo p99 ms | CPU us/frame | server CPU % | "
        "loadgen CPU % | sender slip p99 ms |\n"
        "|---|---:|---|---:|---:|---:|---:|---:|---:|"
    )
    rows = [header]
    for run in runs:
        rep, srv = run.report, run.report.server
        rows.append(
            f"| {run.server} | {rep.calls} | {_verdict(rep)} | {rep.loss_pct:.3f} | "
            f"{_latency(rep)[1]} | {_num(srv.cpu_us_per_frame if srv else None)} | "
            f"{_num(srv.cpu_pct if srv else None, 0)} | {rep.loadgen_cpu_pct:.0f} | "
            f"{rep.slip_ms.p99:.2f} |"
        )
    return "\n".join(rows)


def max_calls_table(maxima: dict[str, tuple[int, str]]) -> str:
    """Max sustained calls per server, with why a search stopped before the server's limit."""
    rows = [
        "| server | max concurrent calls (p99 < 60 ms, no loss) |",
        "|---|---:|",
    ]
    for name, (calls, note) in maxima.items():
        shown = f">= {calls} ({note})" if note else str(calls)
        rows.append(f"| {name} | {shown} |")
    return "\n".join(rows)


def medians_table(runs: Sequence[Run], medians: dict[str, float | None]) -> str:
    """Per server: the median CPU per frame over its runs, as ratios to floor, baseline and
    service (the echo path) when they ran too."""
    references = [name for name in ("floor", "baseline", "service") if medians.get(name)]
    header = "| server | runs | CPU us/frame (median) | min - max |" + "".join(
        f" vs {name} |" for name in references
    )
    rows = [header, "|---|---:|---:|---:|" + "---:|" * len(references)]
    for name, median in medians.items():
        values = [
            r.report.server.cpu_us_per_frame for r in runs if r.server == name and r.report.server
        ]
        spread = f"{min(values):.1f} - {max(values):.1f}" if values else "-"
        ratios = "".join(
            f" {median / ref:.2f}x |" if median is not None and (ref := medians[other]) else " - |"
            for other in references
        )
        rows.append(f"| {name} | {len(values)} | {_num(median)} | {spread} |{ratios}")
    return "\n".join(rows)


def latency_table(runs: Sequence[Run]) -> str:
    """Per server, medians over its runs: latency each way measured outside the service from
    the markers (bench.marker_latency), what the service measured itself adding
    (bench.bridge_metrics), and each call's first audio back after its first frame."""
    header = (
        "| server | runs | in p50 / p99 ms | out p50 / p99 ms | round trip p50 / p99 ms | "
        "self-reported in p50 / p99 ms | self-reported out p50 / p99 ms | "
        "first audio p50 / p99 ms | markers back / sent |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    rows = [header]
    for name in dict.fromkeys(run.server for run in runs):
        reports = [run.report for run in runs if run.server == name]
        cells = [_median_pair([rep.external_ms.get(d) for rep in reports]) for d in _DIRECTIONS]
        cells += [_median_pair([rep.bridge_latency_ms.get(d) for rep in reports]) for d in _SELF]
        firsts = [rep.first_audio_ms for rep in reports if rep.first_audio_ms.count]
        cells.append(
            f"{statistics.median(f.p50 for f in firsts):.1f} / "
            f"{statistics.median(f.p99 for f in firsts):.1f}"
            if firsts
            else "-"
        )
        cells.append(
            " ".join(f"{r.marks.get('back', 0)}/{r.marks.get('sent', 0)}" for r in reports)
            if any(r.marks for r in reports)
            else "-"
        )
        rows.append(f"| {name} | {len(reports)} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


_DIRECTIONS = ("in", "out", "round")
_SELF = ("in", "out")


def _median_pair(measured: Sequence[list[float] | None]) -> str:
    """ "p50 / p99" as the medians over runs of [p50, p99, ...] lists; "-" when none."""
    values = [m for m in measured if m]
    if not values:
        return "-"
    return (
        f"{statistics.median(m[0] for m in values):.2f} / "
        f"{statistics.median(m[1] for m in values):.2f}"
    )


def median_cpu_us_per_frame(runs: Sequence[Run], server: str) -> float | None:
    """The median CPU per frame of `server`'s runs (None without /proc readings)."""
    values = [
        r.report.server.cpu_us_per_frame for r in runs if r.server == server and r.report.server
    ]
    return statistics.median(values) if values else None


def _latency(report: LoadReport) -> tuple[str, str]:
    """Echo latency p50 and p99, or n/a where the server's audio is not an echo."""
    if not report.has_echo_latency:
        return "n/a", "n/a"
    return f"{report.latency_ms.p50:.2f}", f"{report.latency_ms.p99:.2f}"


def _verdict(report: LoadReport) -> str:
    notes = [] if report.schedule_kept else ["loadgen late"]
    notes += ["audio started late"] if report.audio_started_late else []
    notes += [] if report.quiet else ["noisy"]
    verdict = "PASS" if report.passed else "FAIL"
    return f"{verdict} ({', '.join(notes)})" if notes else verdict


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"
