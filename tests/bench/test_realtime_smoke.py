"""The `realtime` and `voicelive` bench servers end to end: the service on MEDIA_BACKEND=openai
or voice-live against bench.fake_realtime in that dialect, 2 calls for about a second; the fake
model's audio comes back.

Correctness only (audio flows both ways through the resamplers); timing belongs to bench/.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from bench.fake_realtime import appended_bytes, running_fake
from bench.load_config import LoadConfig
from bench.loadgen import run_load
from bench.servers import (
    REALTIME,
    VOICELIVE,
    ServerSpec,
    fake_realtime_env,
    fake_realtime_for,
    running_server,
)


@pytest.mark.parametrize("spec", [REALTIME, VOICELIVE], ids=lambda spec: spec.name)
async def test_the_fake_models_audio_reaches_the_caller(tmp_path: Path, spec: ServerSpec) -> None:
    with running_server(fake_realtime_for(spec), None, tmp_path / "fake.log") as fake:
        env = fake_realtime_env(spec, fake.port)
        with running_server(spec, None, tmp_path / "service.log", env) as server:
            config = LoadConfig(
                url=server.ws_url,
                calls=2,
                seconds=1.0,
                warmup_s=0.5,
                drain_s=0.3,
                server_pid=server.pid,
                expect="audio",
                helper_pids=(fake.pid,),
            )
            report = await asyncio.to_thread(run_load, config)

    assert report.calls_connected == 2
    assert not report.closed_early
    assert report.frames_sent == 2 * 50
    assert report.frames_echoed == 0
    assert report.audio_out > 0
    assert report.frames_out == report.audio_out
    assert report.first_audio_ms.count == 2
    assert report.server is not None
    assert report.server.cpu_us_per_frame > 0
    assert "echo latency   n/a" in report.render()


def test_append_sizes_are_read_without_decoding() -> None:
    for size in (2880, 2878, 2879, 960):
        audio = base64.b64encode(bytes(size)).decode()
        fast = '{"type":"input_audio_buffer.append","audio":"' + audio + '"}'
        spaced = '{"audio": "' + audio + '", "type": "input_audio_buffer.append"}'
        assert appended_bytes(fast) == size
        assert appended_bytes(spaced) == size
    assert appended_bytes('{"type":"session.update","session":{}}') is None


async def test_every_append_is_answered_with_as_much_audio() -> None:
    async with running_fake() as running, connect(f"ws://127.0.0.1:{running.port}/v1") as ws:
        assert '"session.created"' in str(await ws.recv())
        audio = base64.b64encode(bytes(2880)).decode()
        await ws.send('{"type":"input_audio_buffer.append","audio":"' + audio + '"}')
        assert '"response.created"' in str(await ws.recv())
        delta = str(await ws.recv())
        assert '"type":"response.output_audio.delta"' in delta
        b64 = delta.rsplit('"delta":"', 1)[1].removesuffix('"}')
        assert len(base64.b64decode(b64)) == 2880
    assert running.fake.stats.appends == running.fake.stats.deltas == 1
