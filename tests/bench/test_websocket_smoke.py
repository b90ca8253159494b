"""The `websocket` bench server end to end: the service on MEDIA_BACKEND=websocket relaying 2
calls for about a second to bench.fake_downstream, which checks the bearer token, echoes the
live audio and times every marked frame both ways.

Correctness only; timing belongs to bench/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from bench.fake_downstream import running_downstream
from bench.servers import WEBSOCKET
from tests.bench.fake_runs import run_beside_fake


async def test_every_frame_is_timed_through_the_downstream_both_ways(tmp_path: Path) -> None:
    report = await run_beside_fake(WEBSOCKET, tmp_path)

    assert report.calls_connected == 2
    assert report.frames_sent == report.frames_echoed == 2 * 50
    assert (report.misrouted, report.corrupt, report.duplicates) == (0, 0, 0)
    assert report.marks["sent"] == report.marks["seen_by_fake"] == report.marks["back"] == 100
    for direction in ("in", "out", "round"):
        p50, p99, count = report.external_ms[direction]
        assert 0 < p50 <= p99 < 1000
        assert count == 100
    assert not report.closed_early


async def test_the_downstream_refuses_a_handshake_without_the_token() -> None:
    async with running_downstream(token="secret") as (server, fake):
        port = next(iter(server.sockets)).getsockname()[1]
        url = f"ws://127.0.0.1:{port}/agent"
        with pytest.raises(InvalidStatus) as refused:
            await connect(url, additional_headers={"Authorization": "Bearer wrong"})
        assert refused.value.response.status_code == 401
        async with connect(url, additional_headers={"Authorization": "Bearer secret"}) as ws:
            await ws.send('{"type":"start","resumed":false}')
            await ws.send('{"type":"replay","ms":20}')
            await ws.send(bytes(640))  # replayed: skipped
            await ws.send('{"type":"live"}')
            await ws.send(b"ACSB" + bytes(636))
            assert await asyncio.wait_for(ws.recv(), 5.0) == b"ACSB" + bytes(636)
    assert fake.stats.refused == 1
    assert fake.stats.replayed_skipped == 1
    assert fake.stats.frames == 1
    assert len(fake.marks) == 4
