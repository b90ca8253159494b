"""A call keeps its agent when its media comes back: after a reload on the same instance, and
on another instance of the deployment (shared Redis)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.emulator import AcsEmulator
from app.emulator.media_client import StreamScript, tone
from tests.agents.conftest import SALES, record_backends
from tests.agents.test_routes import ring
from tests.conftest import AppFactory, StreamFactory, call_state


async def test_a_resumed_stream_and_a_handover_keep_the_calls_agent(
    start_app: AppFactory,
    emulator: AcsEmulator,
    open_stream: StreamFactory,
    agents_file: Callable[[dict[str, Any]], Path],
    redis_url: str,
    redis_prefix: str,
) -> None:
    def lines(sales_delay_ms: int) -> dict[str, Any]:
        return {
            "agents": {"sales": {"echo_delay_ms": sales_delay_ms}, "support": {}},
            "routes": {SALES: "sales", "default": "support"},
        }

    shared = {
        "agents_file": agents_file(lines(9)),
        "redis_url": redis_url,
        "redis_key_prefix": redis_prefix,
        "media_start_on_answer": False,
        "media_resume_window_s": 0,  # each new stream gets a new backend: what it is built with
    }
    script = StreamScript(audio=tone(16000, 2.0))
    async with start_app(instance_id="a", **shared) as a, start_app(instance_id="b", **shared) as b:
        built_a, built_b = record_backends(a), record_backends(b)
        call_id = await ring(a, emulator, SALES)
        await call_state(a, call_id, agent="sales", connection_state="connected")
        async with open_stream(a, call_connection_id=call_id, script=script) as first:
            await first.wait_for(lambda s: s.frames_sent >= 5)
        # The sales agent changes on a: the running call keeps the one it started with.
        agents_file(lines(11))
        assert (await a.client.post("/api/agents/reload")).status_code == 200
        async with open_stream(a, call_connection_id=call_id, script=script) as resumed:
            await resumed.wait_for(lambda s: s.frames_sent >= 5)
        async with open_stream(b, call_connection_id=call_id, script=script) as handed:
            await handed.wait_for(lambda s: s.frames_sent >= 5)
    assert [s.echo_delay_ms for s in built_a] == [9, 9]
    # b serves it with the call's agent, by name, as b loaded it (each instance reloads its
    # own file; b did not), not with b's default agent (echo_delay_ms 0).
    assert [s.echo_delay_ms for s in built_b] == [9]
