"""Two calls for about a second through a bench server beside its fake peer (a fake model or
downstream), with the audio markers timed: what the smoke tests run."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from bench.load_config import LoadConfig
from bench.load_report import LoadReport
from bench.loadgen import run_load
from bench.marker_latency import fake_marks_reader
from bench.servers import ServerSpec, fake_realtime_env, fake_realtime_for, running_server


async def run_beside_fake(spec: ServerSpec, tmp_path: Path, **config: Any) -> LoadReport:
    """The load report of 2 calls through `spec`; `config` adds to the LoadConfig."""
    marks = tmp_path / "marks.npy"
    with running_server(fake_realtime_for(spec, marks), None, tmp_path / "fake.log") as fake:
        env = fake_realtime_env(spec, fake.port)
        with running_server(spec, None, tmp_path / "service.log", env) as server:
            load = LoadConfig(
                url=server.ws_url,
                calls=2,
                seconds=1.0,
                warmup_s=0.5,
                drain_s=1.0,  # a loaded machine may hold the last markers back
                server_pid=server.pid,
                helper_pids=(fake.pid,),
                **config,
            )
            reader = fake_marks_reader(fake.pid, marks)
            return await asyncio.to_thread(run_load, load, reader)
