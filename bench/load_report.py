"""The outcome of one load-generator run: merged worker results, percentiles, server usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bench.call_stream import WorkerResult
from bench.load_config import LoadConfig
from bench.procstat import ProcSample

# The sender kept its 20 ms schedule when 99 % of sends left within a quarter frame of their
# due time and at most 1 in 1000 was a whole frame late.
SLIP_P99_LIMIT_MS = 5.0
FRAME_LATE_MS = 20.0
FRAME_LATE_LIMIT_PCT = 0.1
# Above this share of its core the load generator itself adds latency to what it measures.
LOADGEN_CPU_LIMIT_PCT = 85.0
P99_LIMIT_MS = 60.0
# CPU on the measured cores not spent by the server / load generator (other processes, kernel
# network work): above this share of a core the numbers are disturbed.
OTHER_LOAD_LIMIT_PCT = 10.0


@dataclass(frozen=True, slots=True)
class Percentiles:
    """Milliseconds; all zero when there was no sample."""

    p50: float = 0.0
    p90: float = 0.0
    p99: float = 0.0
    max: float = 0.0
    count: int = 0

    @classmethod
    def of(cls, samples_ms: bytes) -> Percentiles:
        values = np.frombuffer(samples_ms, dtype=np.float64)
        if values.size == 0:
            return cls()
        p50, p90, p99 = np.percentile(values, [50, 90, 99])
        return cls(float(p50), float(p90), float(p99), float(values.max()), int(values.size))


@dataclass(frozen=True, slots=True)
class ServerUsage:
    """The server's CPU and memory over the measured window (from /proc)."""

    pid: int
    cpu_s: float
    cpu_pct: float
    cpu_us_per_frame: float
    rss_idle_mib: float
    rss_loaded_mib: float
    rss_per_call_kib: float
    core_busy_pct: float | None = None
    core_us_per_frame: float | None = None


@dataclass(frozen=True, slots=True)
class ServerSamples:
    """/proc readings of the server: idle (before any call), window start and window end."""

    idle: ProcSample
    start: ProcSample
    end: ProcSample
    core_busy_s: float | None = None


@dataclass(frozen=True, slots=True)
class LoadReport:
    """Everything one run measured; `passed` applies the benchmark's bar."""

    url: str
    calls: int
    calls_connected: int
    seconds: float
    sample_rate: int
    procs: int
    frames_sent: int
    frames_echoed: int
    lost: int
    loss_pct: float
    duplicates: int
    misrouted: int
    corrupt: int
    unmarked: int
    stop_audio: int
    latency_ms: Percentiles
    slip_ms: Percentiles
    sends_frame_late: int
    loadgen_cpu_pct: float
    loadgen_cores_other_pct: float
    server: ServerUsage | None
    connect_errors: list[str] = field(default_factory=list)
    closed_early: list[str] = field(default_factory=list)

    @property
    def schedule_kept(self) -> bool:
        """Whether the load generator sent on time (otherwise the run measured the generator)."""
        return (
            self.slip_ms.p99 <= SLIP_P99_LIMIT_MS
            and self.sends_frame_late <= self.frames_sent * FRAME_LATE_LIMIT_PCT / 100
            and self.loadgen_cpu_pct <= LOADGEN_CPU_LIMIT_PCT
        )

    @property
    def quiet(self) -> bool:
        """No notable other load on the server's core or the load generator's cores."""
        server_other = 0.0
        if self.server is not None and self.server.core_busy_pct is not None:
            server_other = self.server.core_busy_pct - self.server.cpu_pct
        return max(server_other, self.loadgen_cores_other_pct) <= OTHER_LOAD_LIMIT_PCT

    @property
    def passed(self) -> bool:
        """Every call connected and stayed up, nothing lost or mangled, p99 echo < 60 ms."""
        return (
            self.calls_connected == self.calls
            and not self.closed_early
            and self.lost == 0
            and self.misrouted == 0
            and self.corrupt == 0
            and self.frames_sent > 0
            and self.latency_ms.p99 < P99_LIMIT_MS
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schedule_kept"] = self.schedule_kept
        data["quiet"] = self.quiet
        data["passed"] = self.passed
        return data

    def render(self) -> str:
        """A human-readable summary, with the generator's own health spelled out."""
        lat, slip = self.latency_ms, self.slip_ms
        lines = [
            f"target         {self.url}",
            f"calls          {self.calls_connected}/{self.calls} connected, "
            f"{self.seconds:g} s measured, {self.sample_rate} Hz, {self.procs} process(es)",
            f"frames         sent {self.frames_sent}, echoed {self.frames_echoed}, "
            f"lost {self.lost} ({self.loss_pct:.3f} %)",
            f"echo latency   p50 {lat.p50:.2f} ms, p90 {lat.p90:.2f} ms, p99 {lat.p99:.2f} ms, "
            f"max {lat.max:.2f} ms",
            f"anomalies      duplicates {self.duplicates}, misrouted {self.misrouted}, "
            f"corrupt {self.corrupt}, unmarked {self.unmarked}, stop_audio {self.stop_audio}",
            f"sender slip    p50 {slip.p50:.2f} ms, p99 {slip.p99:.2f} ms, max {slip.max:.2f} ms, "
            f"{self.sends_frame_late} sends a frame late; "
            f"load generator CPU {self.loadgen_cpu_pct:.0f} % of its busiest core",
        ]
        if self.server is not None:
            srv = self.server
            lines.append(
                f"server         pid {srv.pid}: {srv.cpu_us_per_frame:.1f} us CPU per frame "
                f"(in+out), {srv.cpu_pct:.0f} % of a core, RSS {srv.rss_idle_mib:.1f} -> "
                f"{srv.rss_loaded_mib:.1f} MiB ({srv.rss_per_call_kib:.0f} KiB per call)"
            )
            if srv.core_busy_pct is not None:
                lines.append(
                    f"server core    {srv.core_busy_pct:.0f} % busy, "
                    f"{srv.core_us_per_frame or 0.0:.1f} us per frame (server process "
                    f"{srv.cpu_pct:.0f} %; a gap is other load on the core or kernel softirq "
                    "not charged to the process)"
                )
        srv_other = 0.0
        if self.server is not None and self.server.core_busy_pct is not None:
            srv_other = self.server.core_busy_pct - self.server.cpu_pct
        for label, problems in (("connect", self.connect_errors), ("closed", self.closed_early)):
            if problems:
                lines.append(f"{label} errors {len(problems)}, e.g. {problems[0]}")
        if not self.quiet:
            lines.append(
                "WARNING        other load on the measured cores (server core "
                f"{srv_other:.0f} %, load generator cores {self.loadgen_cores_other_pct:.0f} % "
                f"of a core beyond our processes; limit {OTHER_LOAD_LIMIT_PCT:g} %): rerun on "
                "a quiet machine"
            )
        if not self.schedule_kept:
            lines.append(
                "WARNING        the load generator could NOT keep its 20 ms schedule "
                f"(limits: slip p99 <= {SLIP_P99_LIMIT_MS:g} ms, <= {FRAME_LATE_LIMIT_PCT:g} % of "
                f"sends a frame late, CPU <= {LOADGEN_CPU_LIMIT_PCT:g} %): these numbers "
                "measure the generator too"
            )
        lines.append(f"verdict        {'PASS' if self.passed else 'FAIL'} (p99 < 60 ms, no loss)")
        return "\n".join(lines)


def build_report(
    config: LoadConfig,
    results: Sequence[WorkerResult],
    window_s: float,
    loadgen_cpu_pct: float,
    server: ServerSamples | None,
    loadgen_cores_other_pct: float = 0.0,
) -> LoadReport:
    """Merge the workers' results with the server's /proc readings over the window."""
    sent = sum(r.frames_sent for r in results)
    lateness = b"".join(r.lateness_ms for r in results)
    echoed = sum(r.frames_echoed for r in results)
    connected = sum(r.calls_connected for r in results)
    usage = None
    if server is not None and config.server_pid is not None:
        idle, start, end = server.idle, server.start, server.end
        cpu_s = end.cpu_s - start.cpu_s
        frames = sent + echoed
        usage = ServerUsage(
            pid=config.server_pid,
            cpu_s=cpu_s,
            cpu_pct=100.0 * cpu_s / window_s,
            cpu_us_per_frame=1e6 * cpu_s / frames if frames else 0.0,
            rss_idle_mib=idle.rss_bytes / 2**20,
            rss_loaded_mib=end.rss_bytes / 2**20,
            rss_per_call_kib=(end.rss_bytes - idle.rss_bytes) / 1024 / max(connected, 1),
            core_busy_pct=(
                100.0 * server.core_busy_s / window_s if server.core_busy_s is not None else None
            ),
            core_us_per_frame=(
                1e6 * server.core_busy_s / frames
                if server.core_busy_s is not None and frames
                else None
            ),
        )
    return LoadReport(
        url=config.url,
        calls=config.calls,
        calls_connected=connected,
        seconds=config.seconds,
        sample_rate=config.sample_rate,
        procs=config.procs,
        frames_sent=sent,
        frames_echoed=echoed,
        lost=sent - echoed,
        loss_pct=100.0 * (sent - echoed) / sent if sent else 0.0,
        duplicates=sum(r.duplicates for r in results),
        misrouted=sum(r.misrouted for r in results),
        corrupt=sum(r.corrupt for r in results),
        unmarked=sum(r.unmarked for r in results),
        stop_audio=sum(r.stop_audio for r in results),
        latency_ms=Percentiles.of(b"".join(r.latencies_ms for r in results)),
        slip_ms=Percentiles.of(lateness),
        sends_frame_late=int(np.count_nonzero(np.frombuffer(lateness) > FRAME_LATE_MS)),
        loadgen_cpu_pct=loadgen_cpu_pct,
        loadgen_cores_other_pct=loadgen_cores_other_pct,
        server=usage,
        connect_errors=[e for r in results for e in r.connect_errors],
        closed_early=[e for r in results for e in r.closed_early],
    )
