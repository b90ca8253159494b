"""Metrics move as a real call flows through the service."""

from __future__ import annotations

import asyncio
import re

from app.emulator import AcsEmulator
from tests.conftest import LiveApp, answered_call, call_state, media_client

FRAMES_IN = 'acs_bridge_media_frames_total{direction="in"}'
FRAMES_OUT = 'acs_bridge_media_frames_total{direction="out"}'


def _value(text: str, metric: str) -> float:
    match = re.search(rf"^{re.escape(metric)} ([0-9.e+]+)$", text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


async def test_metrics_follow_a_call(live_app: LiveApp, emulator: AcsEmulator) -> None:
    call_id = await answered_call(live_app, emulator)
    await call_state(live_app, call_id, media_state="active")
    stream = media_client(emulator).streams[call_id]
    await stream.wait_for(lambda s: len(s.audio_received) >= 60, timeout=5)
    during = ""
    for _ in range(100):  # media counters are flushed about once a second
        during = (await live_app.client.get("/metrics")).text
        if min(_value(during, FRAMES_IN), _value(during, FRAMES_OUT)) >= 50:
            break
        await asyncio.sleep(0.05)
    assert _value(during, "acs_bridge_calls_active") == 1
    assert _value(during, "acs_bridge_media_sessions_active") == 1
    assert _value(during, FRAMES_IN) >= 50
    assert _value(during, FRAMES_OUT) >= 50
    assert 'route="/api/callbacks"' in during

    assert (await live_app.client.delete(f"/api/calls/{call_id}")).status_code == 202
    await call_state(live_app, call_id, connection_state="disconnected")
    after = ""
    for _ in range(100):
        after = (await live_app.client.get("/metrics")).text
        if _value(after, "acs_bridge_media_sessions_active") == 0:
            break
        await asyncio.sleep(0.05)
    assert _value(after, "acs_bridge_calls_active") == 0
    assert _value(after, "acs_bridge_media_sessions_active") == 0
    assert _value(after, 'acs_bridge_calls_ended_total{outcome="completed"}') == 1
