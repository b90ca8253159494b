"""The media benchmark: the service (echo backend) against the floor, each pinned to one core.

    uv run python -m bench.run --calls 100 --seconds 20
    uv run python -m bench.run --find-max --seconds 10
    uv run python -m bench.run --servers floor baseline service --baseline-rev HEAD~1 --repeat 3
    uv run python -m bench.run --servers service realtime

Each server is started fresh for each load run, pinned with `taskset` to `--server-core`;
this process and the load generator's workers run on the other cores. Prints markdown tables
and writes the full results as JSON under `bench/results/`.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.baseline import BaselineError, baseline_checkout
from bench.bridge_metrics import bridge_latency_ms
from bench.load_config import LoadConfig
from bench.load_report import LoadReport
from bench.loadgen import run_load
from bench.marker_latency import fake_marks_reader
from bench.servers import (
    SERVERS,
    RunningServer,
    ServerSpec,
    fake_realtime_env,
    fake_realtime_for,
    running_server,
    writes_marks,
)
from bench.tables import (
    Run,
    comparison_table,
    find_max_table,
    latency_table,
    max_calls_table,
    median_cpu_us_per_frame,
    medians_table,
)

RESULTS_DIR = Path(__file__).parent / "results"
DEFAULT_STEPS = "50,100,150,200,250,300,350,400,450,500,550,600,700,800"
_SETTLE_S = 1.0  # after startup, before the idle RSS reading


def main(argv: list[str] | None = None) -> int:
    """Run the comparison (or the --find-max search); exit 1 if the service missed a target."""
    args = _parser().parse_args(argv)
    cores = sorted(os.sched_getaffinity(0))
    if args.server_core not in cores or len(cores) < 2:
        sys.exit(f"need at least 2 usable cores including --server-core (have {cores})")
    loadgen_cores = {c for c in cores if c != args.server_core}
    os.sched_setaffinity(0, loadgen_cores)  # inherited by the load generator's workers
    args.fake_cpus = {args.fake_core} if args.fake_core is not None else loadgen_cores
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = args.out / f"{stamp}-{'find-max' if args.find_max else f'{args.calls}calls'}"
    specs = [SERVERS[name] for name in args.servers]
    if any(spec.baseline for spec in specs) and not args.baseline_rev:
        sys.exit("--servers baseline needs --baseline-rev REV (a git revision of this repo)")
    with contextlib.ExitStack() as stack:
        summary: dict[str, Any] = {}
        if any(spec.baseline for spec in specs):
            try:
                checkout = stack.enter_context(baseline_checkout(args.baseline_rev))
            except BaselineError as exc:
                sys.exit(str(exc))
            summary["baseline"] = {"rev": checkout.rev, "commit": checkout.commit}
            print(f"baseline: {checkout.rev} = {checkout.commit}", file=sys.stderr, flush=True)
            specs = [
                dataclasses.replace(s, python=str(checkout.python)) if s.baseline else s
                for s in specs
            ]
        code = _run(args, specs, out_dir, summary)
    return code


def _run(
    args: argparse.Namespace, specs: list[ServerSpec], out_dir: Path, summary: dict[str, Any]
) -> int:
    runs: list[Run] = []
    if args.find_max:
        steps = [int(step) for step in args.steps.split(",")]
        maxima = {spec.name: _find_max(spec, steps, args, out_dir, runs) for spec in specs}
        print(find_max_table(runs), end="\n\n")
        print(max_calls_table(maxima))
        summary["max_calls"] = {n: {"calls": c, "note": note} for n, (c, note) in maxima.items()}
        ok = _service_ok_max(maxima)
    else:
        # Alternating repeats, so slow drift on the machine hits every server alike.
        for _ in range(args.repeat):
            for spec in specs:
                runs.append(Run(spec.name, _measure(spec, args.calls, args, out_dir)))
        medians = {spec.name: median_cpu_us_per_frame(runs, spec.name) for spec in specs}
        print(comparison_table(runs, medians.get("floor")), end="\n\n")
        print(medians_table(runs, medians), end="\n\n")
        print(latency_table(runs))
        summary["median_cpu_us_per_frame"] = medians
        summary["cpu_ratio"] = _ratio(medians, "service", "floor")
        summary["ratios"] = {
            f"{a}/{b}": _ratio(medians, a, b)
            for a, b in (
                ("service", "floor"),
                ("baseline", "floor"),
                ("service", "baseline"),
                ("realtime", "service"),
                ("realtime", "floor"),
                ("realtime", "realtime-baseline"),
                ("voicelive", "realtime"),
                ("voicelive", "service"),
                ("websocket", "service"),
                ("pipecat-echo", "service"),
            )
            if _ratio(medians, a, b) is not None
        }
        print()
        for label, ratio in summary["ratios"].items():
            target = " (target <= 1.00x)" if label == "service/floor" else ""
            print(f"{label} CPU per frame (medians of {args.repeat}): {ratio:.2f}x{target}")
        ok = summary["cpu_ratio"] is None or summary["cpu_ratio"] <= 1.0
    for run in runs:
        if run.report.audio_started_late:
            print(
                f"\nWARNING: in the {run.server} run at {run.report.calls} calls not every call "
                "talked back before the measured window: raise --warmup."
            )
        if not run.report.schedule_kept:
            print(
                f"\nWARNING: the load generator fell behind its schedule in the {run.server} run "
                f"at {run.report.calls} calls: that row measures the generator too."
            )

    out_dir.mkdir(parents=True, exist_ok=True)
    result_file = out_dir / "results.json"
    result_file.write_text(json.dumps(_document(args, runs, summary), indent=2) + "\n")
    print(f"\nresults: {result_file}")
    return 0 if ok else 1


def _measure(spec: ServerSpec, calls: int, args: argparse.Namespace, out_dir: Path) -> LoadReport:
    """One fresh server, one load run against it."""
    log = out_dir / f"{spec.name}-{calls}.log"
    with contextlib.ExitStack() as stack:
        env = _env(args.service_env, spec)
        helpers: tuple[int, ...] = ()
        fake_marks = None
        if spec.fake_realtime:
            fake_log = out_dir / f"{spec.name}-{calls}.fake-realtime.log"
            marks = out_dir / f"{spec.name}-{calls}.marks.npy" if writes_marks(spec) else None
            fake = stack.enter_context(
                running_server(fake_realtime_for(spec, marks), None, fake_log, cpus=args.fake_cpus)
            )
            env = {**fake_realtime_env(spec, fake.port), **env}
            helpers = (fake.pid,)
            if marks is not None:
                fake_marks = fake_marks_reader(fake.pid, marks)
        server = stack.enter_context(running_server(spec, args.server_core, log, env))
        time.sleep(_SETTLE_S)
        config = LoadConfig(
            url=server.ws_url,
            calls=calls,
            seconds=args.seconds,
            warmup_s=args.warmup,
            sample_rate=args.rate,
            procs=args.procs,
            deflate=args.deflate,
            server_pid=server.pid,
            server_cpu=server.core,
            expect=spec.expect,
            helper_pids=helpers,
            markers=spec.markers,
        )
        profiler = _start_profiler(args, server, out_dir, calls)
        report = run_load(config, fake_marks)
        report = dataclasses.replace(report, bridge_latency_ms=bridge_latency_ms(server.port))
        if profiler is not None:
            profiler.wait()
    print(f"\n## {spec.name}, {calls} calls\n{report.render()}", file=sys.stderr, flush=True)
    return report


def _find_max(
    spec: ServerSpec, steps: list[int], args: argparse.Namespace, out_dir: Path, runs: list[Run]
) -> tuple[int, str]:
    """Step the calls up until the bar is missed: (last passing step, why the search stopped
    short of the server's limit, or "")."""
    best = 0
    for calls in steps:
        report = _measure(spec, calls, args, out_dir)
        runs.append(Run(spec.name, report))
        if not report.schedule_kept:
            return best, "load generator limit"
        if not report.passed:
            return best, ""
        best = calls
    return best, "all steps passed"


def _start_profiler(
    args: argparse.Namespace, server: RunningServer, out_dir: Path, calls: int
) -> subprocess.Popen[bytes] | None:
    if server.name not in args.profile:
        return None
    py_spy = shutil.which("py-spy")
    if py_spy is None:
        sys.exit("--profile needs py-spy: uv run --with py-spy python -m bench.run ...")
    out_dir.mkdir(parents=True, exist_ok=True)
    output = out_dir / f"{server.name}-{calls}.speedscope.json"
    # Sampled during warmup + window; the delay before the first frame is a fraction of that.
    duration = str(int(args.warmup + args.seconds))
    command = [
        py_spy,
        "record",
        "--pid",
        str(server.pid),
        "--duration",
        duration,
        "--rate",
        "250",
        "--nonblocking",
        "--format",
        "speedscope",
        "-o",
        str(output),
    ]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # noqa: S603


def _env(pairs: list[str], spec: ServerSpec) -> dict[str, str]:
    """`--service-env` settings, over the spec's own, for the service kinds."""
    if not spec.app:
        return {}
    env: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            sys.exit(f"--service-env takes KEY=VALUE, got {pair!r}")
        env[key] = value
    return env


def _ratio(medians: dict[str, float | None], over: str, under: str) -> float | None:
    top, bottom = medians.get(over), medians.get(under)
    if top is None or not bottom:
        return None
    return round(top / bottom, 3)


def _service_ok_max(maxima: dict[str, tuple[int, str]]) -> bool:
    if "service" not in maxima or "floor" not in maxima:
        return True
    return maxima["service"][0] >= maxima["floor"][0]


def _document(args: argparse.Namespace, runs: list[Run], summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "command": " ".join(sys.argv),
        "args": {k: _jsonable(v) for k, v in vars(args).items()},
        "machine": _machine(),
        "summary": summary,
        # "name": the report's own "server" (its /proc usage) would overwrite it.
        "runs": [{"name": r.server, **r.report.to_dict()} for r in runs],
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, set):
        return sorted(value)
    return value


def _machine() -> dict[str, Any]:
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(
        (ln.split(":", 1)[1].strip() for ln in cpuinfo.splitlines() if ln.startswith("model name")),
        "unknown",
    )
    versions: dict[str, str | None] = {}
    for package in ("websockets", "uvicorn", "fastapi", "starlette", "uvloop", "httptools"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {"cpu": model, "cpus": os.cpu_count(), "python": sys.version.split()[0], **versions}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="concurrent calls (comparison)")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds sent before measuring")
    parser.add_argument("--rate", type=int, choices=(16000, 24000), default=16000)
    parser.add_argument("--procs", type=int, default=1, help="load generator processes")
    parser.add_argument("--deflate", action="store_true", help="offer permessage-deflate")
    parser.add_argument("--repeat", type=int, default=1, help="runs per server (alternating)")
    parser.add_argument("--find-max", action="store_true", help="search max sustained calls")
    parser.add_argument("--steps", default=DEFAULT_STEPS, help="call counts for --find-max")
    parser.add_argument(
        "--servers", nargs="+", choices=sorted(SERVERS), default=["floor", "service"]
    )
    parser.add_argument("--server-core", type=int, default=1, help="the core servers run on")
    parser.add_argument(
        "--service-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="setting for service, baseline and realtime, over the bench's defaults (repeatable)",
    )
    parser.add_argument(
        "--baseline-rev", help="git revision the `baseline` server runs (e.g. HEAD~1, main)"
    )
    parser.add_argument(
        "--fake-core",
        type=int,
        help="core for the fake Realtime service (default: the load generator's cores)",
    )
    parser.add_argument(
        "--profile",
        nargs="*",
        default=[],
        choices=sorted(SERVERS),
        help="py-spy record these servers (speedscope JSON next to the results)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR)
    return parser


if __name__ == "__main__":
    sys.exit(main())
