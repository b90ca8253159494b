"""Function calling over the real socket: tools offered, run, answered; end_call, transfer, DTMF."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.agent.tools import ToolConfig, load_tool_config
from app.backends.base import ActionFailed, AudioIn, CallEventIn
from app.backends.realtime import RealtimeBackend
from app.backends.realtime.tool_calls import MAX_RUNNING
from app.emulator import AcsEmulator
from app.settings import Settings
from tests.agent.tool_server import ToolServer, http_tool, tool_server, tools_file
from tests.backends.realtime.conftest import (
    SERVICES,
    FakeActions,
    FakeOutput,
    OpenBackend,
    backend_settings,
)
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, FakeSession, model_tone
from tests.conftest import AppFactory, answered_call, call_state, media_client

pytestmark = SERVICES  # the same behaviour from every Realtime service
TARGETS = {"sales": "+14255550100", "support": "+14255550101"}


@pytest.fixture
async def tools_http() -> AsyncIterator[ToolServer]:
    async with tool_server() as server:
        yield server


def tool_config(tmp_path: Path, server: ToolServer | None = None, **values: Any) -> ToolConfig:
    if server is not None:
        entries = [
            http_tool("lookup", server.url("/json")),
            http_tool("status_text", server.url("/text")),
            http_tool("sluggish", server.url("/slow")),
        ]
        values["agent_tools_file"] = tools_file(tmp_path, entries)
    return load_tool_config(Settings(_env_file=None, **values), {})


async def settle(backend: RealtimeBackend, session: FakeSession) -> None:
    """Round trip caller audio: the backend's loop has run everything that was ready."""
    sent = len(session.append_sizes)
    await backend.receive(AudioIn(bytes(60 * BYTES_PER_MS)))
    await session.wait_for(lambda s: len(s.append_sizes) > sent)


async def test_session_update_offers_the_configured_tools(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    tools = tool_config(tmp_path, tools_http, transfer_targets=TARGETS, agent_dtmf_tool=True)
    async with open_backend(tools=tools):
        update = await (await fake.session()).wait_for_event("session.update")
    session = update["session"]
    assert session["tool_choice"] == "auto"
    assert [tool["name"] for tool in session["tools"]] == [
        "end_call",
        "transfer_call",
        "send_dtmf",
        "lookup",
        "status_text",
        "sluggish",
    ]
    assert all(tool["type"] == "function" for tool in session["tools"])
    transfer = session["tools"][1]["parameters"]["properties"]["destination"]
    assert transfer["enum"] == ["sales", "support"]


async def test_without_tools_the_session_offers_none(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    async with open_backend(tools=tool_config(tmp_path, agent_end_call_tool=False)):
        update = await (await fake.session()).wait_for_event("session.update")
    assert "tools" not in update["session"]
    assert "tool_choice" not in update["session"]


async def test_end_call_hangs_up_only_once_the_goodbye_has_been_heard(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    goodbye = model_tone(300)
    heard_everything = False

    def heard(item_id: str) -> float:
        return 10_000.0 if heard_everything else 0.0

    actions = FakeActions()
    output = FakeOutput(heard=heard)
    async with open_backend(tools=tool_config(tmp_path), actions=actions, output=output) as (
        backend,
        _,
    ):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_bye", goodbye)
        item = await session.function_call("resp_1", "call_end", "end_call")
        await session.end_response("resp_1", [item])
        await session.wait_for(lambda s: "call_end" in s.function_outputs())
        await output.wait_for(lambda o: len(o.played["item_bye"]) == len(goodbye))
        await settle(backend, session)
        assert actions.calls == []  # generated and queued, not yet heard
        heard_everything = True
        await actions.wait_for("hang_up")
    assert json.loads(session.function_outputs()["call_end"]) == {"ok": True}
    assert session.of_type("response.create") == []  # nothing more to say after goodbye
    assert bytes(output.played["item_bye"]) == goodbye
    assert output.reported("tool_call")[0]["name"] == "end_call"


async def test_end_call_waits_for_the_response_that_carries_the_goodbye(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    actions = FakeActions()
    async with open_backend(tools=tool_config(tmp_path), actions=actions) as (backend, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_end", "end_call")
        await session.wait_for(lambda s: "call_end" in s.function_outputs())
        await session.audio("resp_1", "item_bye", model_tone(200))  # said after the call
        await settle(backend, session)
        assert actions.calls == []
        await session.end_response("resp_1")
        await actions.wait_for("hang_up")
    assert len(output.played["item_bye"]) == 200 * BYTES_PER_MS


async def test_a_failed_hang_up_lets_the_agent_carry_on(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    actions = FakeActions(refuse={"hang_up": ActionFailed("acs_error", "ACS said no")})
    async with open_backend(tools=tool_config(tmp_path), actions=actions) as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_end", "end_call")
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    note = session.of_type("conversation.item.create")[-1]["item"]
    assert note["role"] == "system"
    assert note["content"][0]["text"] == "[hanging up failed: ACS said no]"
    assert "ACS said no" in output.reported("error")[0]["message"]


async def test_transfer_call_to_a_configured_name(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    actions = FakeActions()
    tools = tool_config(tmp_path, transfer_targets=TARGETS)
    async with open_backend(tools=tools, actions=actions):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_t", "transfer_call", '{"destination":"sales"}')
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    assert actions.calls == [("transfer", "sales")]
    assert json.loads(session.function_outputs()["call_t"])["ok"] is True


async def test_transfer_call_to_an_unknown_name_is_refused_without_an_action(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    actions = FakeActions()
    tools = tool_config(tmp_path, transfer_targets=TARGETS)
    async with open_backend(tools=tools, actions=actions) as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        arguments = '{"destination":"+19005550199"}'
        await session.function_call("resp_1", "call_t", "transfer_call", arguments)
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    assert actions.calls == []
    assert "is not one of" in json.loads(session.function_outputs()["call_t"])["error"]
    assert output.reported("tool_call")[0]["outcome"] == "error"


async def test_a_failed_transfer_is_told_to_the_model(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path
) -> None:
    tools = tool_config(tmp_path, transfer_targets=TARGETS)
    async with open_backend(tools=tools) as (backend, _):
        session = await fake.session()
        await session.wait_for_event("session.update")
        await settle(backend, session)
        await backend.receive(CallEventIn("CallTransferAccepted", {"operation_context": "t"}))
        failed = {"operation_context": "t", "code": 400, "message": "the line is busy"}
        await backend.receive(CallEventIn("CallTransferFailed", failed))
        await session.wait_for_event("response.create")
    note = session.of_type("conversation.item.create")[-1]["item"]
    assert note["content"] == [
        {"type": "input_text", "text": "[the transfer failed: the line is busy]"}
    ]
    assert session.kinds()[-2:] == ["conversation.item.create", "response.create"]


async def test_send_dtmf(fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path) -> None:
    actions = FakeActions()
    async with open_backend(tools=tool_config(tmp_path, agent_dtmf_tool=True), actions=actions):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_d", "send_dtmf", '{"tones":"1#"}')
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    assert actions.calls == [("send_dtmf", "1#")]


async def test_a_custom_tool_answers_with_the_http_body(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)) as (_, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_l", "lookup", '{"order_id":"42"}')
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    assert session.function_outputs()["call_l"] == '{"found":true,"echo":{"order_id":"42"}}'
    assert tools_http.requests[0].body["call"]["call_connection_id"] == "call-realtime"
    [record] = output.reported("tool_call")
    assert (record["name"], record["outcome"]) == ("lookup", "ok")
    assert record["arguments"] == '{"order_id":"42"}'


async def test_invalid_arguments_go_back_as_an_error_without_a_request(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_l", "lookup", '{"order_id": 42')
        await session.end_response("resp_1")
        await session.wait_for_event("response.create")
    assert "not valid JSON" in json.loads(session.function_outputs()["call_l"])["error"]
    assert tools_http.requests == []


async def test_several_calls_in_one_response_get_one_response_create_after_all_outputs(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    tools = tool_config(tmp_path, tools_http, agent_dtmf_tool=True)
    async with open_backend(tools=tools) as (backend, _):
        session = await fake.session()
        await session.start_response("resp_1")
        items = [
            await session.function_call("resp_1", "call_a", "lookup", '{"order_id":"1"}'),
            await session.function_call("resp_1", "call_b", "status_text", '{"order_id":"2"}'),
            await session.function_call("resp_1", "call_c", "send_dtmf", '{"tones":"9"}'),
        ]
        await session.end_response("resp_1", items)  # the calls listed again: run once each
        await session.wait_for_event("response.create")
        await settle(backend, session)
    assert set(session.function_outputs()) == {"call_a", "call_b", "call_c"}
    kinds = [k for k in session.kinds() if k in ("function_call_output", "response.create")]
    assert kinds == ["function_call_output"] * 3 + ["response.create"]
    assert len(tools_http.requests) == 2


async def test_a_barge_in_during_a_slow_tool_keeps_its_result(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)) as (backend, output):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_a1", model_tone(200))
        await session.function_call("resp_1", "call_s", "sluggish", '{"order_id":"7"}')
        await tools_http.slow_started.wait()
        await session.speech_started()  # the caller talks over "let me check"
        await session.wait_for_event("response.cancel")
        await settle(backend, session)
        tools_http.release.set()
        await session.wait_for_event("response.create")
    assert session.function_outputs()["call_s"] == '{"slow":"done"}'
    assert ("stop", None) in output.log


async def test_response_create_waits_for_the_response_in_flight(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)) as (backend, _):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_s", "sluggish", '{"order_id":"7"}')
        await session.end_response("resp_1")
        await tools_http.slow_started.wait()
        await session.start_response("resp_2")  # the caller spoke; the service answers
        tools_http.release.set()
        await session.wait_for(lambda s: "call_s" in s.function_outputs())
        await settle(backend, session)
        assert session.of_type("response.create") == []
        await session.end_response("resp_2")
        await session.wait_for_event("response.create")


async def test_caller_audio_keeps_flowing_while_a_tool_runs(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    tools = tool_config(tmp_path, tools_http)
    async with open_backend(tools=tools, realtime_append_ms=20) as (backend, _):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_s", "sluggish", '{"order_id":"7"}')
        await session.end_response("resp_1")
        await tools_http.slow_started.wait()
        for _ in range(20):
            await backend.receive(AudioIn(model_tone(20)))
        await session.wait_for(lambda s: len(s.append_sizes) >= 20)
        assert session.function_outputs() == {}  # still running
        tools_http.release.set()
        await session.wait_for_event("response.create")


async def test_close_cancels_a_running_tool(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)) as (backend, _):
        session = await fake.session()
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_s", "sluggish", '{"order_id":"7"}')
        await tools_http.slow_started.wait()
        await backend.close()
    names = [t.get_name() for t in asyncio.all_tasks() if t.get_name().startswith("realtime")]
    assert names == []


async def test_the_model_hangs_up_a_real_call_through_the_emulator(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeRealtime
) -> None:
    async with start_app(**backend_settings(fake, media_audio_format="pcm24KMono")) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, media_state="active")
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        await session.start_response("resp_1")
        await session.audio("resp_1", "item_bye", model_tone(200))
        await session.function_call("resp_1", "call_end", "end_call")
        await session.end_response("resp_1")
        stream = media_client(emulator).streams[call_id]
        await emulator.wait_for(
            lambda: any(r.path.endswith(f"{call_id}:terminate") for r in emulator.requests)
        )
        record = await call_state(live, call_id, connection_state="disconnected")
        metrics = (await live.client.get("/metrics")).text
    assert [tool["name"] for tool in update["session"]["tools"]] == ["end_call"]
    assert len(stream.audio_received) >= 10  # the goodbye reached the caller first
    tool_calls: Any = record["tool_calls"]
    assert [(c["name"], c["outcome"]) for c in tool_calls] == [("end_call", "ok")]
    assert 'acs_bridge_tool_calls_total{outcome="ok",tool="end_call"} 1.0' in metrics


async def test_a_tool_that_answers_after_a_reconnect_is_not_sent_to_the_new_session(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)) as (backend, output):
        first = await fake.session()
        await first.start_response("resp_1")
        await first.function_call("resp_1", "call_s", "sluggish", '{"order_id":"7"}')
        await tools_http.slow_started.wait()
        await first.drop()
        second = await fake.session(1)
        await second.wait_for_event("session.update")
        tools_http.release.set()
        await output.wait_for(lambda o: len(o.reported("tool_call")) == 1)
        await settle(backend, second)
    assert second.function_outputs() == {}  # the new session never heard of call_s
    assert second.of_type("response.create") == []
    assert output.reported("tool_call")[0]["outcome"] == "ok"


async def test_more_calls_at_once_than_allowed_are_answered_with_an_error(
    fake: FakeRealtime, open_backend: OpenBackend, tmp_path: Path, tools_http: ToolServer
) -> None:
    async with open_backend(tools=tool_config(tmp_path, tools_http)):
        session = await fake.session()
        await session.start_response("resp_1")
        for index in range(MAX_RUNNING + 1):
            await session.function_call("resp_1", f"call_{index}", "sluggish", '{"order_id":"1"}')
        await session.end_response("resp_1")
        await session.wait_for(lambda s: f"call_{MAX_RUNNING}" in s.function_outputs())
        refused = json.loads(session.function_outputs()[f"call_{MAX_RUNNING}"])
        tools_http.release.set()
        await session.wait_for_event("response.create")
    assert refused == {"error": "too many tool calls at once"}
    assert len(tools_http.requests) == MAX_RUNNING
    assert len(session.function_outputs()) == MAX_RUNNING + 1


async def test_the_model_transfers_and_sends_dtmf_on_a_real_call_within_the_settings(
    start_app: AppFactory, emulator: AcsEmulator, fake: FakeRealtime
) -> None:
    settings = backend_settings(
        fake,
        media_audio_format="pcm24KMono",
        agent_dtmf_tool=True,
        transfer_targets={"sales": "+14255550100"},
    )
    async with start_app(**settings) as live:
        call_id = await answered_call(live, emulator)
        await call_state(live, call_id, connection_state="connected", media_state="active")
        session = await fake.session()
        update = await session.wait_for_event("session.update")
        await session.start_response("resp_1")
        await session.function_call("resp_1", "call_tones", "send_dtmf", '{"tones": "1#"}')
        # A destination the operator did not configure: refused, no request to ACS.
        await session.function_call(
            "resp_1", "call_evil", "transfer_call", '{"destination": "+19005550199"}'
        )
        await session.end_response("resp_1")
        await emulator.wait_for(
            lambda: any(r.path.endswith(f"{call_id}:sendDtmfTones") for r in emulator.requests)
        )
        outputs = await _outputs(session, {"call_tones", "call_evil"})
        await session.start_response("resp_2")
        await session.function_call(
            "resp_2", "call_sales", "transfer_call", '{"destination": "sales"}'
        )
        await session.end_response("resp_2")
        await emulator.wait_for(
            lambda: any(
                r.path.endswith(f"{call_id}:transferToParticipant") for r in emulator.requests
            )
        )
        record = await call_state(live, call_id, connection_state="disconnected")
    tools = {tool["name"]: tool for tool in update["session"]["tools"]}
    assert tools["transfer_call"]["parameters"]["properties"]["destination"]["enum"] == ["sales"]
    [dtmf] = [r for r in emulator.requests if r.path.endswith(":sendDtmfTones")]
    assert dtmf.body["tones"] == ["one", "pound"]
    assert dtmf.body["targetParticipant"]["phoneNumber"]["value"] == "+14255550123"
    transfers = [r for r in emulator.requests if r.path.endswith(":transferToParticipant")]
    assert [t.body["targetParticipant"]["phoneNumber"]["value"] for t in transfers] == [
        "+14255550100"
    ]
    assert "error" in json.loads(outputs["call_evil"])
    actions: Any = record["actions"]
    assert [(a["kind"], a["detail"], a["requested_by"]) for a in actions] == [
        ("send_dtmf", "1#", "agent"),
        ("transfer", "sales", "agent"),
    ]


async def _outputs(session: FakeSession, call_ids: set[str]) -> dict[str, str]:
    for _ in range(250):
        outputs = session.function_outputs()
        if call_ids <= outputs.keys():
            return outputs
        await asyncio.sleep(0.02)
    raise AssertionError(f"no outputs for {call_ids}: {session.function_outputs()}")
