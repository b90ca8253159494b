"""The `realtime` and `voicelive` bench servers end to end: the service on MEDIA_BACKEND=openai
or voice-live against bench.fake_realtime in that dialect, 2 calls for about a second; the fake
model's audio comes back, and the audio markers are timed both ways.

Correctness only (audio flows both ways through the resamplers, every marker is measured);
timing belongs to bench/.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from bench.fake_realtime import appended_audio, running_fake
from bench.servers import (
    REALTIME,
    VOICELIVE,
    ServerSpec,
)
from tests.bench.fake_runs import run_beside_fake


@pytest.mark.parametrize("spec", [REALTIME, VOICELIVE], ids=lambda spec: spec.name)
async def test_the_fake_models_audio_reaches_the_caller(tmp_path: Path, spec: ServerSpec) -> None:
    report = await run_beside_fake(spec, tmp_path, expect="audio", markers=spec.markers)

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
    # Every marker group of the window reached the fake and was timed; on the way back a
    # group cut by the silence the service pads an underrun with is counted as garbled.
    sent = report.marks["sent"]
    assert sent == 2 * 25
    assert report.marks["seen_by_fake"] == report.external_ms["in"][2] == sent
    assert report.marks["back"] + report.marks["garbled"] >= sent
    assert report.marks["misrouted"] == 0
    for direction in ("in", "out", "round"):
        p50, p99, count = report.external_ms[direction]
        assert 0 < p50 <= p99 < 1000
        assert count >= sent - report.marks["garbled"]


def test_appended_audio_is_read_without_parsing_the_services_spelling() -> None:
    audio = base64.b64encode(bytes(2880)).decode()
    fast = '{"type":"input_audio_buffer.append","audio":"' + audio + '"}'
    spaced = '{"audio": "' + audio + '", "type": "input_audio_buffer.append"}'
    assert appended_audio(fast) == appended_audio(spaced) == audio
    assert appended_audio('{"type":"session.update","session":{}}') is None


async def test_every_append_is_answered_with_the_same_audio() -> None:
    async with running_fake() as running, connect(f"ws://127.0.0.1:{running.port}/v1") as ws:
        assert '"session.created"' in str(await ws.recv())
        audio = base64.b64encode(bytes(range(256)) * 11).decode()
        await ws.send('{"type":"input_audio_buffer.append","audio":"' + audio + '"}')
        assert '"response.created"' in str(await ws.recv())
        delta = str(await ws.recv())
        assert '"type":"response.output_audio.delta"' in delta
        assert delta.rsplit('"delta":"', 1)[1].removesuffix('"}') == audio
    assert running.fake.stats.appends == running.fake.stats.deltas == 1
