"""The bridge's call tools on a real Pipecat LLM service, against a local fake chat server,
on a real call through the emulator."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.emulator import AcsEmulator
from tests.agent.tool_server import http_tool, tool_server, tools_file
from tests.backends.pipecat import bots
from tests.backends.pipecat.fake_openai import FakeOpenAI, Reply, ToolCall, fake_openai
from tests.backends.pipecat.test_end_to_end import settings
from tests.conftest import AppFactory, answered_call, call_state, media_client


@pytest.fixture
async def fake(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    async with fake_openai() as server:
        monkeypatch.setattr(bots, "openai_base_url", server.base_url)
        yield server


async def _with_tool_calls(live: Any, call_id: str, count: int) -> dict[str, Any]:
    """The call's record once `count` tool calls are on it (it is written behind)."""
    body: dict[str, Any] = {}
    for _ in range(250):
        body = (await live.client.get(f"/api/calls/{call_id}")).json()
        if len(body.get("tool_calls", [])) >= count:
            return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {count} tool calls on the call: {body}")


def requests_to(emulator: AcsEmulator, call_id: str, action: str) -> list[Any]:
    return [r for r in emulator.requests if r.path.endswith(f"{call_id}:{action}")]


async def test_end_call_hangs_up_once_the_goodbye_has_been_heard(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeOpenAI
) -> None:
    fake.replies.append(Reply("Thanks for calling, goodbye.", (ToolCall("end_call"),)))
    async with start_app(**settings("llm_bot")) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        stream = media_client(emulator).streams[call_id]
        await emulator.wait_for(lambda: bool(requests_to(emulator, call_id, "terminate")))
        heard = len(stream.audio_received)
        body = await call_state(live, call_id, connection_state="disconnected")
    tools = fake.chats[0]["tools"]
    assert [tool["function"]["name"] for tool in tools] == ["end_call"]
    assert fake.speeches == ["Thanks for calling, goodbye."]
    spoken_ms = len(fake.speeches[0]) * 40  # the fake's speech: 40 ms a character
    assert heard * 20 >= spoken_ms - 60  # all of it but the resampler's edges
    tool_calls: Any = body["tool_calls"]
    assert [(c["name"], c["outcome"]) for c in tool_calls] == [("end_call", "ok")]
    assert len(fake.chats) == 1  # the model was not asked to go on


async def test_transfer_call_reaches_only_a_configured_destination(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeOpenAI
) -> None:
    fake.replies.extend(
        [
            Reply("", (ToolCall("transfer_call", '{"destination": "+19005550199"}'),)),
            Reply("", (ToolCall("transfer_call", '{"destination": "sales"}'),)),
            Reply("Putting you through."),
        ]
    )
    app_settings = settings("llm_bot", transfer_targets={"sales": "+14255550100"})
    fake.hold = asyncio.Event()
    async with start_app(**app_settings) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected", media_state="active")
        fake.hold.set()
        await emulator.wait_for(
            lambda: bool(requests_to(emulator, call_id, "transferToParticipant"))
        )
        await fake.wait_for(lambda f: len(f.chats) >= 3)
        await call_state(live, call_id, connection_state="disconnected")
        body = await _with_tool_calls(live, call_id, 2)
    transfers = requests_to(emulator, call_id, "transferToParticipant")
    assert [t.body["targetParticipant"]["phoneNumber"]["value"] for t in transfers] == [
        "+14255550100"
    ]
    schema = {tool["function"]["name"]: tool for tool in fake.chats[0]["tools"]}
    destination = schema["transfer_call"]["function"]["parameters"]["properties"]["destination"]
    assert destination["enum"] == ["sales"]
    refused = [m for m in fake.chats[1]["messages"] if m["role"] == "tool"]
    assert "error" in json.loads(refused[-1]["content"])
    outcomes = [(c["name"], c["outcome"]) for c in body["tool_calls"]]
    assert outcomes == [("transfer_call", "error"), ("transfer_call", "ok")]
    assert [(a["kind"], a["detail"]) for a in body["actions"]] == [("transfer", "sales")]


async def test_a_failed_transfer_is_told_to_the_llm(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeOpenAI
) -> None:
    fake.replies.extend(
        [
            Reply("", (ToolCall("transfer_call", '{"destination": "sales"}'),)),
            Reply("One moment."),
            Reply("Sorry, sales is busy."),
        ]
    )
    emulator.fail_next_transfer()
    app_settings = settings("llm_bot", transfer_targets={"sales": "+14255550100"})
    fake.hold = asyncio.Event()
    async with start_app(**app_settings) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected", media_state="active")
        fake.hold.set()
        await fake.wait_for(lambda f: len(f.chats) >= 3)
    notes = [m["content"] for m in fake.chats[-1]["messages"] if m["role"] == "developer"]
    assert len(notes) == 1
    assert notes[0].startswith("[the transfer failed: ")


async def test_send_dtmf_and_an_http_tool_of_the_tools_file(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.replies.extend(
        [
            Reply(
                "",
                (
                    ToolCall("send_dtmf", '{"tones": "1#"}'),
                    ToolCall("lookup", '{"order_id": "42"}'),
                ),
            ),
            Reply("Done."),
        ]
    )
    async with tool_server() as tools_http:
        tools = tools_file(tmp_path, [http_tool("lookup", tools_http.url("/json"))])
        app_settings = settings("llm_bot", agent_dtmf_tool=True, agent_tools_file=tools)
        fake.hold = asyncio.Event()
        async with start_app(**app_settings) as live:
            call_id = await answered_call(live, emulator)
            # The model acts at once: let it answer once the bridge knows the call is up.
            await call_state(live, call_id, connection_state="connected", media_state="active")
            fake.hold.set()
            await emulator.wait_for(lambda: bool(requests_to(emulator, call_id, "sendDtmfTones")))
            await fake.wait_for(lambda f: len(f.chats) >= 2)
            body = await _with_tool_calls(live, call_id, 2)
    names = [tool["function"]["name"] for tool in fake.chats[0]["tools"]]
    assert names == ["end_call", "send_dtmf", "lookup"]
    [dtmf] = requests_to(emulator, call_id, "sendDtmfTones")
    assert dtmf.body["tones"] == ["one", "pound"]
    assert [r.body["arguments"] for r in tools_http.requests] == [{"order_id": "42"}]
    answers = [json.loads(m["content"]) for m in fake.chats[1]["messages"] if m["role"] == "tool"]
    assert {"found": True, "echo": {"order_id": "42"}} in answers
    outcomes = sorted((c["name"], c["outcome"]) for c in body["tool_calls"])
    assert outcomes == [("lookup", "ok"), ("send_dtmf", "ok")]
