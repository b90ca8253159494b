"""The `pipecat-echo` and `pipecat-cascade` bench servers end to end, 2 calls for about a
second: the echo bot's audio comes back marked; the cascade listens and the calls stay up.

Correctness only; timing belongs to bench/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from bench.load_config import LoadConfig
from bench.loadgen import run_load
from bench.servers import (
    PIPECAT_CASCADE,
    PIPECAT_ECHO,
    fake_realtime_env,
    fake_realtime_for,
    running_server,
)


async def test_the_pipecat_echo_bot_echoes_every_frame(tmp_path: Path) -> None:
    with running_server(PIPECAT_ECHO, None, tmp_path / "service.log") as server:
        config = LoadConfig(
            url=server.ws_url,
            calls=2,
            seconds=1.0,
            warmup_s=0.5,
            drain_s=0.5,
            server_pid=server.pid,
        )
        report = await asyncio.to_thread(run_load, config)
    assert report.calls_connected == 2
    assert report.frames_sent == 2 * 50
    # Pipecat's output sends whole 40 ms chunks: a call's last odd 20 ms frame may wait for more.
    assert report.lost <= report.calls_connected
    assert report.frames_echoed >= report.frames_sent - report.calls_connected
    assert report.misrouted == 0
    assert report.corrupt == 0


async def test_the_cascade_listens_and_every_call_stays_up(tmp_path: Path) -> None:
    with running_server(fake_realtime_for(PIPECAT_CASCADE), None, tmp_path / "fake.log") as fake:
        env = fake_realtime_env(PIPECAT_CASCADE, fake.port)
        with running_server(PIPECAT_CASCADE, None, tmp_path / "service.log", env) as server:
            config = LoadConfig(
                url=server.ws_url,
                calls=2,
                seconds=1.0,
                warmup_s=0.5,
                drain_s=0.3,
                server_pid=server.pid,
                expect="listen",
                helper_pids=(fake.pid,),
            )
            report = await asyncio.to_thread(run_load, config)
    assert report.calls_connected == 2
    assert not report.closed_early
    assert report.frames_sent == 2 * 50
    assert report.passed
