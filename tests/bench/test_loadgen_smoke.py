"""The load generator and the floor server end to end: 2 calls for about a second.

Correctness only (every frame echoed to the right call, intact); timing belongs to bench/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.floor_server import bound_port, running_floor
from bench.load_config import LoadConfig
from bench.loadgen import run_load
from bench.servers import FLOOR, free_port, running_server


def _config(url: str, server_pid: int | None = None) -> LoadConfig:
    return LoadConfig(
        url=url, calls=2, seconds=1.0, warmup_s=0.2, drain_s=0.5, server_pid=server_pid
    )


async def test_every_frame_comes_back_to_its_call() -> None:
    async with running_floor() as server:
        url = f"ws://127.0.0.1:{bound_port(server)}/ws"
        report = await asyncio.to_thread(run_load, _config(url))

    assert report.calls_connected == 2
    assert report.frames_sent == 2 * 50
    assert report.frames_echoed == report.frames_sent
    assert report.lost == 0
    assert (report.misrouted, report.corrupt, report.duplicates, report.unmarked) == (0, 0, 0, 0)
    assert report.latency_ms.count == report.frames_echoed
    assert report.slip_ms.count == report.frames_sent
    assert not report.connect_errors
    assert not report.closed_early


async def test_pinned_floor_process_reports_server_usage(tmp_path: Path) -> None:
    with running_server(FLOOR, core=None, log_path=tmp_path / "floor.log") as server:
        report = await asyncio.to_thread(run_load, _config(server.ws_url, server.pid))

    assert report.frames_echoed == report.frames_sent == 2 * 50
    assert report.server is not None
    assert report.server.pid == server.pid
    assert report.server.cpu_us_per_frame >= 0
    assert report.server.rss_idle_mib > 0


def test_refused_connections_are_reported() -> None:
    report = run_load(_config(f"ws://127.0.0.1:{free_port()}/ws"))
    assert report.calls_connected == 0
    assert len(report.connect_errors) == 2
    assert not report.passed
