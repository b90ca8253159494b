"""Load generator: N concurrent ACS media calls against a `ws://host:port/ws` URL.

    uv run python -m bench.loadgen ws://127.0.0.1:8000/ws --calls 100 --seconds 20

Each call opens a WebSocket with the ACS upgrade headers, sends AudioMetadata, then AudioData
every 20 ms on an absolute monotonic schedule (calls staggered across the 20 ms slot), and
matches the echoed frames by the marker in their PCM. Calls are split over `--procs` worker
processes; this process only coordinates and samples /proc.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from pathlib import Path

import numpy as np

from bench import procstat
from bench.call_stream import WorkerResult
from bench.load_config import LoadConfig
from bench.load_report import LoadReport, ServerSamples, build_report
from bench.load_worker import worker_main
from bench.marker_latency import marker_latency

_START_LEAD_S = 0.3  # between "all connected" and the first frame, so every worker is waiting
_RESULT_GRACE_S = 30.0


class LoadGenError(RuntimeError):
    """A worker process failed or stopped answering."""


def run_load(
    config: LoadConfig, fake_marks: Callable[[], np.ndarray | None] | None = None
) -> LoadReport:
    """Play the calls, block until they end, and return what was measured.

    `fake_marks` gives the markers the fake behind the service saw, once the calls are over
    (bench.marker_latency); without it only the round trip is measured from the markers."""
    ctx = multiprocessing.get_context("spawn")
    idle = procstat.sample(config.server_pid) if config.server_pid is not None else None
    workers: list[tuple[BaseProcess, Connection]] = []
    try:
        for n in range(config.procs):
            ours, theirs = ctx.Pipe()
            indices = list(range(n, config.calls, config.procs))
            process: BaseProcess = ctx.Process(
                target=worker_main, args=(config, indices, theirs), name=f"loadgen-{n}"
            )
            process.start()
            theirs.close()
            workers.append((process, ours))
        connect_budget = config.connect_timeout_s * (1 + config.calls / config.connect_concurrency)
        for _, conn in workers:
            _expect(conn, "ready", connect_budget)

        t0 = time.monotonic() + _START_LEAD_S
        wall0 = time.time() + (t0 - time.monotonic())
        for _, conn in workers:
            conn.send(("start", t0, wall0))
        window_start = t0 + config.warmup_s
        window_end = window_start + config.seconds
        probe = _WindowProbe(config, [p.pid for p, _ in workers if p.pid is not None])
        _sleep_until(window_start)
        probe.start()
        _sleep_until(window_end)
        probe.stop()

        deadline = window_end + config.drain_s + _RESULT_GRACE_S
        results = [_expect(conn, "result", deadline - time.monotonic()) for _, conn in workers]
    finally:
        for process, conn in workers:
            process.join(timeout=5)
            if process.is_alive():
                process.kill()
                process.join()
            conn.close()
    sends = np.frombuffer(b"".join(r.mark_sends for r in results))
    receipts = np.frombuffer(b"".join(r.mark_receipts for r in results))
    external = marker_latency(
        sends,
        receipts,
        fake_marks() if fake_marks is not None else None,
        audio=config.markers == "audio",
        calls=config.calls,
    )
    return build_report(
        config,
        results,
        config.seconds,
        probe.loadgen_cpu_pct(config.seconds),
        probe.server_samples(idle),
        probe.loadgen_cores_other_pct(config.seconds),
        probe.helper_cpu_pct(config.seconds),
        external,
    )


class _WindowProbe:
    """Reads the server, its core and the worker processes at the window's start and end."""

    def __init__(self, config: LoadConfig, worker_pids: list[int]) -> None:
        self._server_pid = config.server_pid
        self._server_cpu = config.server_cpu
        self._worker_pids = worker_pids
        self._helper_pids = config.helper_pids
        self._helpers: list[float] = []
        self._server: list[procstat.ProcSample] = []
        self._core: list[float] = []
        self._workers: list[list[float]] = []
        self._own_cores = sorted(os.sched_getaffinity(0) - {config.server_cpu})
        self._own_busy: list[float] = []

    def start(self) -> None:
        self._read()

    def stop(self) -> None:
        self._read()

    def _read(self) -> None:
        if self._server_pid is not None:
            self._server.append(procstat.sample(self._server_pid))
        if self._server_cpu is not None:
            self._core.append(procstat.core_busy_seconds(self._server_cpu))
        self._workers.append([procstat.cpu_seconds(pid) for pid in self._worker_pids])
        self._helpers.append(sum(procstat.cpu_seconds(pid) for pid in self._helper_pids))
        self._own_busy.append(sum(procstat.core_busy_seconds(c) for c in self._own_cores))

    def server_samples(self, idle: procstat.ProcSample | None) -> ServerSamples | None:
        if idle is None or len(self._server) != 2:
            return None
        core_busy = self._core[1] - self._core[0] if len(self._core) == 2 else None
        return ServerSamples(idle, self._server[0], self._server[1], core_busy)

    def loadgen_cores_other_pct(self, window_s: float) -> float:
        """Busy time of the load generator's cores not spent in its workers, % of one core."""
        if len(self._workers) != 2 or len(self._own_busy) != 2:
            return 0.0
        used = sum(self._workers[1]) - sum(self._workers[0])
        if len(self._helpers) == 2:
            used += self._helpers[1] - self._helpers[0]
        busy = self._own_busy[1] - self._own_busy[0]
        return max(0.0, 100.0 * (busy - used) / window_s)

    def helper_cpu_pct(self, window_s: float) -> float:
        """CPU of the helper processes over the window, % of one core."""
        if len(self._helpers) != 2:
            return 0.0
        return 100.0 * (self._helpers[1] - self._helpers[0]) / window_s

    def loadgen_cpu_pct(self, window_s: float) -> float:
        if len(self._workers) != 2:
            return 0.0
        before, after = self._workers
        used = [end - start for start, end in zip(before, after, strict=True)]
        # Workers may share cores (affinity): judge the busiest core, not the sum.
        cores = max(1, min(len(used), len(os.sched_getaffinity(0))))
        return 100.0 * max(max(used, default=0.0), sum(used) / cores) / window_s


def _expect(conn: Connection, kind: str, timeout_s: float) -> WorkerResult:
    if not conn.poll(max(timeout_s, 0.1)):
        raise LoadGenError(f"a load worker sent no {kind!r} within {timeout_s:.0f} s")
    message = conn.recv()
    if message[0] == "error":
        raise LoadGenError(f"a load worker failed: {message[1]}")
    if message[0] != kind:
        raise LoadGenError(f"a load worker sent {message[0]!r}, expected {kind!r}")
    if kind == "result":
        result: WorkerResult = message[1]
        return result
    return WorkerResult()


def _sleep_until(deadline: float) -> None:
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def main(argv: list[str] | None = None) -> int:
    """`python -m bench.loadgen URL ...`: print the report; exit 1 when the run failed the bar."""
    parser = argparse.ArgumentParser(prog="bench.loadgen", description=__doc__.split("\n")[0])
    parser.add_argument("url", help="the media WebSocket, e.g. ws://127.0.0.1:8000/ws")
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=10.0, help="measured window")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent before measuring")
    parser.add_argument("--drain", type=float, default=1.0, help="seconds to wait for echoes")
    parser.add_argument("--rate", type=int, choices=(16000, 24000), default=16000)
    parser.add_argument("--procs", type=int, default=1, help="worker processes (calls split)")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--server-pid", type=int, help="sample this server's CPU/RSS from /proc")
    parser.add_argument("--server-cpu", type=int, help="the core the server is pinned to")
    parser.add_argument("--cpus", help="pin the load generator to these CPUs, e.g. 0 or 0,2")
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    args = parser.parse_args(argv)

    if args.cpus:
        os.sched_setaffinity(0, {int(cpu) for cpu in args.cpus.split(",")})
    try:
        config = LoadConfig(
            url=args.url,
            calls=args.calls,
            seconds=args.seconds,
            warmup_s=args.warmup,
            drain_s=args.drain,
            sample_rate=args.rate,
            procs=args.procs,
            deflate=args.deflate,
            server_pid=args.server_pid,
            server_cpu=args.server_cpu,
        )
    except ValueError as exc:
        parser.error(str(exc))
    report = run_load(config)
    print(report.render())
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report.to_dict(), indent=2) + "\n")
    return 0 if report.passed else 1


if __name__ == "__main__":
    sys.exit(main())
