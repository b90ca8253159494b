"""The outcome of one load-generator run: merged worker results, percentiles, server usage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from bench.call_stream import WorkerResult
from bench.load_config import LoadConfig
from bench.marker_latency import MarkerLatency
from bench.procstat import ProcSample

# The sender kept its 20 ms schedule when 99 % of sends left within a quarter frame of their
# due time and at most 1 in 1000 was a whole frame late.
SLIP_P99_LIMIT_MS = 5.0
FRAME_LATE_MS = 20.0
FRAME_LATE_LIMIT_PCT = 0.1
# Above this share of its core the load generator itself adds latency to what it measures.
LOADGEN_CPU_LIMIT_PCT = 85.0
P99_LIMIT_MS = 60.0
# "audio" runs: audio out in the window may fall short of audio in by edge effects only.
AUDIO_SHORTFALL_LIMIT_PCT = 1.0
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
    expect: str = "echo"  # "audio": the server talks back with audio of its own (LoadConfig)
    audio_out: int = 0  # unmarked AudioData received in the window
    first_audio_ms: Percentiles = field(default_factory=Percentiles)
    helper_cpu_pct: float = 0.0
    warmup_s: float = 0.0
    # The service's own measure of what it adds (bench.bridge_metrics): direction -> [p50 ms,
    # p99 ms, samples], over the whole run.
    bridge_latency_ms: dict[str, list[float]] = field(default_factory=dict)
    # Measured outside the service from the markers (bench.marker_latency): direction ("in",
    # "out", "round") -> [p50 ms, p99 ms, samples], over the measured window; and the counts.
    external_ms: dict[str, list[float]] = field(default_factory=dict)
    marks: dict[str, int] = field(default_factory=dict)

    @property
    def audio_started_late(self) -> bool:
        """An "audio" run whose window opened before every call was talking back."""
        first = self.first_audio_ms
        return self.expect == "audio" and (
            first.count < self.calls_connected or first.max > self.warmup_s * 1000.0
        )

    @property
    def frames_out(self) -> int:
        """Frames the server sent in the window: echoes, or its own audio."""
        return self.frames_echoed + self.audio_out

    @property
    def has_echo_latency(self) -> bool:
        return self.expect == "echo"

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
        if self.expect == "audio":
            # No echo to time; the model must have spoken (almost) as much as it heard.
            timely = self.audio_out > 0 and self.loss_pct <= AUDIO_SHORTFALL_LIMIT_PCT
        elif self.expect == "listen":
            timely = True  # nothing comes back: the calls must only stay up
        else:
            timely = self.lost == 0 and self.latency_ms.p99 < P99_LIMIT_MS
        return (
            self.calls_connected == self.calls
            and not self.closed_early
            and self.misrouted == 0
            and self.corrupt == 0
            and not self.marks.get("misrouted")
            and self.frames_sent > 0
            and timely
        )

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["schedule_kept"] = self.schedule_kept
        data["quiet"] = self.quiet
        data["passed"] = self.passed
        data["frames_out"] = self.frames_out
        return data

    def render(self) -> str:
        """A human-readable summary, with the generator's own health spelled out."""
        lat, slip = self.latency_ms, self.slip_ms
        lines = [
            f"target         {self.url}",
            f"calls          {self.calls_connected}/{self.calls} connected, "
            f"{self.seconds:g} s measured, {self.sample_rate} Hz, {self.procs} process(es)",
        ]
        if self.expect == "audio":
            first = self.first_audio_ms
            lines += [
                f"frames         sent {self.frames_sent}, audio back {self.audio_out} (the "
                f"server's own, not echoes), short {self.lost} ({self.loss_pct:.3f} %)",
                "echo latency   n/a (the audio is the model's, not an echo); first outbound "
                f"audio after the first frame sent: p50 {first.p50:.1f} ms, p99 {first.p99:.1f} "
                f"ms, max {first.max:.1f} ms ({first.count} calls)",
            ]
        else:
            lines += [
                f"frames         sent {self.frames_sent}, echoed {self.frames_echoed}, "
                f"lost {self.lost} ({self.loss_pct:.3f} %)",
                f"echo latency   p50 {lat.p50:.2f} ms, p90 {lat.p90:.2f} ms, "
                f"p99 {lat.p99:.2f} ms, max {lat.max:.2f} ms",
            ]
        lines += [
            f"anomalies      duplicates {self.duplicates}, misrouted {self.misrouted}, "
            f"corrupt {self.corrupt}, unmarked {self.unmarked}"
            f"{' (the audio back, whole run)' if self.expect == 'audio' else ''}, "
            f"stop_audio {self.stop_audio}",
            f"sender slip    p50 {slip.p50:.2f} ms, p99 {slip.p99:.2f} ms, max {slip.max:.2f} ms, "
            f"{self.sends_frame_late} sends a frame late; "
            f"load generator CPU {self.loadgen_cpu_pct:.0f} % of its busiest core",
        ]
        if self.external_ms or self.marks:
            measured = ", ".join(
                f"{direction} p50 {p50:.2f} / p99 {p99:.2f} ms ({count:.0f})"
                for direction, (p50, p99, count) in self.external_ms.items()
            )
            counts = ", ".join(f"{name.replace('_', ' ')} {n}" for name, n in self.marks.items())
            lines.append(f"markers        {measured or 'none measured'}; {counts}")
        for direction, (p50, p99, count) in sorted(self.bridge_latency_ms.items()):
            lines.append(
                f"bridge {direction:<7} p50 {p50:.2f} ms, p99 {p99:.2f} ms ({count:.0f} samples, "
                "the service's own histogram, whole run)"
            )
        if self.helper_cpu_pct:
            lines.append(
                f"helper         fake Realtime service {self.helper_cpu_pct:.0f} % of a core "
                "(on the load generator's cores)"
            )
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
        if self.audio_started_late:
            lines.append(
                f"WARNING        {self.first_audio_ms.count}/{self.calls_connected} calls talked "
                f"back, the last {self.first_audio_ms.max:.0f} ms after its first frame: the "
                f"window opened before all of them did (--warmup {self.warmup_s:g} s); raise "
                "--warmup"
            )
        if not self.schedule_kept:
            lines.append(
                "WARNING        the load generator could NOT keep its 20 ms schedule "
                f"(limits: slip p99 <= {SLIP_P99_LIMIT_MS:g} ms, <= {FRAME_LATE_LIMIT_PCT:g} % of "
                f"sends a frame late, CPU <= {LOADGEN_CPU_LIMIT_PCT:g} %): these numbers "
                "measure the generator too"
            )
        bar = (
            f"audio back, short <= {AUDIO_SHORTFALL_LIMIT_PCT:g} %"
            if self.expect == "audio"
            else "p99 < 60 ms, no loss"
        )
        lines.append(f"verdict        {'PASS' if self.passed else 'FAIL'} ({bar})")
        return "\n".join(lines)


def build_report(
    config: LoadConfig,
    results: Sequence[WorkerResult],
    window_s: float,
    loadgen_cpu_pct: float,
    server: ServerSamples | None,
    loadgen_cores_other_pct: float = 0.0,
    helper_cpu_pct: float = 0.0,
    external: MarkerLatency | None = None,
) -> LoadReport:
    """Merge the workers' results with the server's /proc readings over the window."""
    external_ms: dict[str, list[float]] = {}
    marks: dict[str, int] = {}
    if external is not None:
        for direction, samples in external.samples_ms.items():
            p50, p99 = np.percentile(samples, [50, 99])
            external_ms[direction] = [round(float(p50), 3), round(float(p99), 3), samples.size]
        marks = {**external.counts, "garbled": sum(r.marks_garbled for r in results)}
    sent = sum(r.frames_sent for r in results)
    lateness = b"".join(r.lateness_ms for r in results)
    echoed = sum(r.frames_echoed for r in results)
    audio_out = sum(r.audio_out for r in results)
    connected = sum(r.calls_connected for r in results)
    # Echo runs: every frame sent must come back. Audio runs: as much audio must come back.
    if config.expect == "listen":
        lost = 0
    else:
        lost = sent - echoed if config.expect == "echo" else max(0, sent - audio_out)
    usage = None
    if server is not None and config.server_pid is not None:
        idle, start, end = server.idle, server.start, server.end
        cpu_s = end.cpu_s - start.cpu_s
        frames = sent + echoed + audio_out
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
        lost=lost,
        loss_pct=100.0 * lost / sent if sent else 0.0,
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
        expect=config.expect,
        audio_out=audio_out,
        first_audio_ms=Percentiles.of(b"".join(r.first_audio_ms for r in results)),
        helper_cpu_pct=helper_cpu_pct,
        warmup_s=config.warmup_s,
        external_ms=external_ms,
        marks=marks,
    )
