"""Lines tried without Azure: the console's softphone calls a given line, and that line's
agent answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from websockets.asyncio.client import connect

from tests.agents.conftest import SALES, SUPPORT
from tests.api.test_softphone import KEY, Phone, service
from tests.emulator.test_test_calls import service as embedded_service


async def test_the_softphone_calls_the_line_it_is_given(
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file(
        {"agents": {"sales": {}, "support": {}}, "routes": {SALES: "sales", SUPPORT: "support"}}
    )
    async with (
        service(agents_file=path) as s,
        connect(f"{s.ws_url}?key={KEY}&to={quote(SUPPORT)}") as ws,
    ):
        await ws.send(json.dumps({"type": "start", "sample_rate": 16000}))
        phone = Phone(ws, 16000)
        call_id = str((await phone.control("call"))["call_connection_id"])
        await s.wait_for(call_id, agent="support", callee=f"4:{SUPPORT}")


async def test_a_test_call_reaches_the_agent_of_its_line_or_says_it_was_rejected(
    agents_file: Callable[[dict[str, Any]], Path],
) -> None:
    path = agents_file({"agents": {"sales": {}}, "routes": {SALES: "sales"}})
    async with embedded_service(agents_file=path) as bridge:
        call_id = await bridge.place(to=SALES, hang_up_after_s=5)
        record = (await bridge.api.get(f"/api/calls/{call_id}")).json()
        assert record["agent"] == "sales"
        refused = await bridge.api.post("/api/emulator/calls", json={"to": SUPPORT})
    assert refused.status_code == 409
    assert refused.json()["error"] == {
        "code": "call_rejected",
        "message": f"the service rejected the call to {SUPPORT}: no agent answers it",
    }
