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
