"""A whole call through every part: Event Grid, the real SDK, callbacks, media, control API."""

from __future__ import annotations

import asyncio
from typing import Any

from app.emulator import AcsEmulator
from tests.conftest import AppFactory, LiveApp, answered_call, call_state, media_client


async def test_a_call_streams_audio_both_ways_and_ends_cleanly(
    live_app: LiveApp, emulator: AcsEmulator
) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, connection_state="connected", media_state="active")
    stream = media_client(emulator).streams[call_id]
    await stream.wait_for(lambda s: len(s.audio_received) >= 25, timeout=5)
    assert all(len(f.pcm) == 640 for f in stream.audio_received)

    record = (await live_app.client.get(f"/api/calls/{call_id}")).json()
    assert record["media"]["connected"] is True

    assert (await live_app.client.post(f"/api/calls/{call_id}/media/stop")).status_code == 202
    await stream.wait_closed()
    await call_state(live_app, call_id, media_state="stopped")

    assert (await live_app.client.post(f"/api/calls/{call_id}/media/start")).status_code == 202
    await call_state(live_app, call_id, media_state="active")
    restarted = media_client(emulator).streams[call_id]
    await restarted.wait_for(lambda s: len(s.audio_received) >= 5, timeout=5)

    assert (await live_app.client.delete(f"/api/calls/{call_id}")).status_code == 202
    await restarted.wait_closed()
    await call_state(live_app, call_id, connection_state="disconnected")
    final: dict[str, Any] = {}
    for _ in range(100):
        final = (await live_app.client.get(f"/api/calls/{call_id}")).json()
        if not final["media"]["connected"]:
            break
        await asyncio.sleep(0.02)
    assert final["media"]["connected"] is False
    assert final["media"]["frames_out"] >= 5
    assert len(live_app.services.media) == 0


async def test_24khz_calls_stream_24khz_frames(
    start_app: AppFactory, emulator: AcsEmulator
) -> None:
    async with start_app(media_audio_format="pcm24KMono") as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await stream.wait_for(lambda s: len(s.audio_received) >= 10, timeout=5)
        assert {len(f.pcm) for f in stream.audio_received} == {960}
