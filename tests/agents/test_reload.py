"""A reload replaces the agents for new calls at once; running calls keep theirs, and an
invalid file changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from app.emulator import AcsEmulator
from tests.agents.conftest import SALES, SUPPORT, record_backends
from tests.agents.test_routes import ring
from tests.conftest import AppFactory, call_state


def sales_line(delay_ms: int, **more: Any) -> dict[str, Any]:
    """The sales line; a second agent in `more` takes the support line."""
    agents: dict[str, Any] = {"sales": {"echo_delay_ms": delay_ms}, **more}
    routes = {SALES: "sales"}
    for name in more:
        routes[SUPPORT] = name
    return {"agents": agents, "routes": routes}


async def test_a_valid_reload_serves_new_calls_and_running_calls_keep_their_agent(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file(sales_line(9))
    async with start_app(agents_file=path) as live:
        built = record_backends(live)
        running = await ring(live, emulator, SALES)
        await emulator.wait_for(lambda: len(built) == 1)

        agents_file(sales_line(11, billing={"echo_delay_ms": 3}))
        reloaded = await live.client.post("/api/agents/reload")
        assert reloaded.status_code == 200, reloaded.text
        assert reloaded.json()["version"] == 2
        assert reloaded.json()["routes"] == {SALES: "sales", SUPPORT: "billing"}

        later = await ring(live, emulator, SALES)
        await emulator.wait_for(lambda: len(built) == 2)
        billing = await ring(live, emulator, SUPPORT)
        await emulator.wait_for(lambda: len(built) == 3)
        assert [s.echo_delay_ms for s in built] == [9, 11, 3]
        await call_state(live, billing, agent="billing")
        # The call that started before the reload is still on, with its agent's backend.
        record = await call_state(live, running, agent="sales", connection_state="connected")
        media = record["media"]
        assert isinstance(media, dict)
        assert media["connected"] is True
        await call_state(live, later, agent="sales")


async def test_an_invalid_reload_changes_nothing_and_says_why(
    start_app: AppFactory,
    emulator: AcsEmulator,
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file(sales_line(9))
    async with start_app(agents_file=path) as live:
        built = record_backends(live)
        running = await ring(live, emulator, SALES)
        await emulator.wait_for(lambda: len(built) == 1)

        agents_file({"agents": {"sales": {"media_backend": "openai"}}, "routes": {}})
        refused = await live.client.post("/api/agents/reload")
        assert refused.status_code == 400
        error = refused.json()["error"]
        assert error["code"] == "invalid_agents_file"
        assert error["message"] == (
            "AGENTS_FILE: agent 'sales': MEDIA_BACKEND=openai needs OPENAI_API_KEY"
        )
        path.write_text("agents: [", encoding="utf-8")
        assert (await live.client.post("/api/agents/reload")).status_code == 400

        listed = (await live.client.get("/api/agents")).json()
        assert listed["version"] == 1
        assert listed["routes"] == {SALES: "sales"}
        await ring(live, emulator, SALES)
        await emulator.wait_for(lambda: len(built) == 2)
        assert built[1].echo_delay_ms == 9
        await call_state(live, running, connection_state="connected", agent="sales")


async def test_the_agent_list_redacts_secrets(
    start_app: AppFactory, agents_file: Callable[[dict[str, Any]], Path]
) -> None:
    path = agents_file(
        {
            "agents": {
                "support": {
                    "media_backend": "websocket",
                    "backend_ws_url": "wss://bot.internal/acs?code=url-secret",
                    "backend_ws_auth_token": "token-secret",
                }
            },
            "routes": {"default": "support"},
        }
    )
    async with start_app(agents_file=path) as live:
        response = await live.client.get("/api/agents")
    assert response.status_code == 200
    assert "secret" not in response.text
    support = response.json()["agents"][0]
    assert support["settings"]["backend_ws_url"] == "wss://bot.internal/acs"
    assert response.json()["default"] == "support"
