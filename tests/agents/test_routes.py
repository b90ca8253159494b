"""Two numbers, two agents: the called party picks the agent, through the real SDK against
the emulator, with the agent's backend behind the real /ws."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.emulator import AcsEmulator
from tests.agents.conftest import SALES, SUPPORT, record_backends
from tests.backends.realtime.fake_server import FakeRealtime, fake_realtime
from tests.backends.websocket_downstream import serving
from tests.conftest import AppFactory, LiveApp, call_state

SALES_PROMPT = "You are Contoso's sales desk. Keep answers short."


async def ring(live: LiveApp, emulator: AcsEmulator, to: str) -> str:
    """Call `to` through Event Grid; the id of the call the service answered."""
    delivery = await emulator.place_incoming_call(live.webhook_url, callee=to)
    assert delivery.deliveries[0].status == 200, delivery.deliveries[0].body
    call = await emulator.call_for_context(delivery.incoming_call_context)
    assert call is not None
    return call.call_connection_id


def lines(fake: FakeRealtime, support_url: str, **routes: str) -> dict[str, Any]:
    return {
        "agents": {
            "sales": {
                "media_backend": "openai",
                "openai_realtime_model": "gpt-realtime",
                "realtime_instructions": SALES_PROMPT,
                "transfer_targets": {"desk": "+14255550100"},
            },
            "support": {"media_backend": "websocket", "backend_ws_url": support_url},
        },
        "routes": {SALES: "sales", f"4:{SUPPORT}": "support", **routes},
    }


async def test_two_numbers_reach_two_agents(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    async with fake_realtime() as fake, serving() as downstream:
        path = agents_file(lines(fake, downstream.url))
        async with start_app(
            agents_file=path, openai_api_key="sk-test", openai_base_url=fake.openai_base_url
        ) as live:
            sales_call = await ring(live, emulator, SALES)
            session = await fake.session()
            update = await session.wait_for_event("session.update")
            assert update["session"]["instructions"] == SALES_PROMPT
            await call_state(live, sales_call, agent="sales")

            support_call = await ring(live, emulator, SUPPORT)
            await downstream.wait_for(lambda d: len(d.starts) == 1)
            assert downstream.starts[0]["callee"] == f"4:{SUPPORT}"
            assert downstream.starts[0]["callConnectionId"] == support_call
            await call_state(live, support_call, agent="support")
            assert len(fake.sessions) == 1  # the support line never reached the model


async def test_an_unrouted_number_gets_the_default_agent(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file(
        {
            "agents": {"sales": {"echo_delay_ms": 5}, "reception": {}},
            "routes": {SALES: "sales", "default": "reception"},
        }
    )
    async with start_app(agents_file=path) as live:
        built = record_backends(live)
        call_id = await ring(live, emulator, "+18005550199")
        await call_state(live, call_id, agent="reception")
        await emulator.wait_for(lambda: len(built) == 1)
        assert built[0].echo_delay_ms == 0  # the global setting, not the sales agent's


async def test_an_unrouted_call_without_default_is_rejected(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file({"agents": {"sales": {}}, "routes": {SALES: "sales"}})
    async with start_app(agents_file=path) as live:
        delivery = await emulator.place_incoming_call(live.webhook_url, callee="+18005550199")
        assert delivery.deliveries[0].status == 200
        rejects = [r for r in emulator.requests if r.path.endswith(":reject")]
        assert len(rejects) == 1
        assert rejects[0].status == 204
        assert rejects[0].body["incomingCallContext"] == delivery.incoming_call_context
        assert not [r for r in emulator.requests if r.path.endswith(":answer")]
        assert emulator.rejection(delivery.incoming_call_context) == "busy"
        assert (await live.client.get("/api/calls")).json() == []
        metrics = (await live.client.get("/metrics")).text
        assert "acs_bridge_calls_unrouted_total 1.0" in metrics


async def test_an_outbound_call_is_served_by_the_agent_asked_for(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file(
        {
            "agents": {"sales": {"echo_delay_ms": 7}, "support": {}},
            "routes": {SALES: "sales", "default": "support"},
        }
    )
    async with start_app(agents_file=path) as live:
        built = record_backends(live)
        response = await live.client.post(
            "/api/calls", json={"target": "+14255550123", "agent": "sales"}
        )
        assert response.status_code == 201, response.text
        assert response.json()["agent"] == "sales"
        await emulator.wait_for(lambda: len(built) == 1)
        assert built[0].echo_delay_ms == 7

        unknown = await live.client.post(
            "/api/calls", json={"target": "+14255550123", "agent": "billing"}
        )
        assert unknown.status_code == 400
        assert unknown.json()["error"]["code"] == "unknown_agent"

        default = await live.client.post("/api/calls", json={"target": "+14255550124"})
        assert default.json()["agent"] == "support"


async def test_an_outbound_call_without_an_agent_needs_a_default(
    start_app: AppFactory, agents_file: Callable[[dict[str, Any]], Path]
) -> None:
    path = agents_file({"agents": {"sales": {}}, "routes": {SALES: "sales"}})
    async with start_app(agents_file=path) as live:
        response = await live.client.post("/api/calls", json={"target": "+14255550123"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "unknown_agent",
        "message": "no default agent: name one (GET /api/agents lists them)",
    }
