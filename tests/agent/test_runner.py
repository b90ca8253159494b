"""ToolRunner: arguments checked, actions taken, custom tools called over real HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from app.agent.http_tools import MAX_OUTPUT_CHARS
from app.agent.runner import ToolRunner
from app.agent.tools import load_tool_config
from app.backends.base import ActionFailed
from app.settings import Settings
from tests.agent.tool_server import ToolServer, http_tool, tools_file
from tests.backends.realtime.conftest import FakeActions, call_context

CALLER = "4:+14255550123"
CALLEE = "8:acs:resource_bot"


@pytest.fixture
async def runner_for(tmp_path: Path, tools_http: ToolServer) -> AsyncIterator[Any]:
    runners: list[ToolRunner] = []

    def make(actions: FakeActions | None = None, **values: Any) -> ToolRunner:
        entries = [
            http_tool("lookup", tools_http.url("/json")),
            http_tool("status_text", tools_http.url("/text")),
            http_tool("no_content", tools_http.url("/empty")),
            http_tool("huge", tools_http.url("/big")),
            http_tool("broken", tools_http.url("/fail")),
            http_tool("sluggish", tools_http.url("/slow"), timeout_s=0.2),
            http_tool("secured", tools_http.url("/json"), headers={"X-Key": "k-${KEY}"}),
        ]
        values.setdefault("transfer_targets", {"sales": "+14255550100"})
        values.setdefault("agent_dtmf_tool", True)
        settings = Settings(
            _env_file=None, agent_tools_file=tools_file(tmp_path, entries), **values
        )
        config = load_tool_config(settings, {"KEY": "from-env"})
        runner = ToolRunner(
            config, call_context(caller=CALLER, callee=CALLEE), actions or FakeActions()
        )
        runners.append(runner)
        return runner

    yield make
    for runner in runners:
        await runner.close()


def error_of(output: str) -> str:
    body = json.loads(output)
    assert set(body) == {"error"}
    message: str = body["error"]
    return message


async def test_a_json_answer_goes_back_compact(runner_for: Any, tools_http: ToolServer) -> None:
    result = await runner_for().run("lookup", '{"order_id": "42"}')
    assert result.ok
    assert result.output == '{"found":true,"echo":{"order_id":"42"}}'
    request = tools_http.requests[0]
    assert request.body == {
        "call": {"call_connection_id": "call-realtime", "caller": CALLER, "callee": CALLEE},
        "arguments": {"order_id": "42"},
    }


async def test_a_text_answer_goes_back_as_text(runner_for: Any) -> None:
    result = await runner_for().run("status_text", '{"order_id": "42"}')
    assert (result.ok, result.output) == (True, "Order 42 ships tomorrow.")


async def test_an_empty_answer_is_ok(runner_for: Any) -> None:
    result = await runner_for().run("no_content", '{"order_id": "1"}')
    assert (result.ok, result.output) == (True, '{"ok": true}')


async def test_a_huge_answer_is_trimmed(runner_for: Any) -> None:
    result = await runner_for().run("huge", '{"order_id": "1"}')
    assert result.ok
    assert len(result.output) < MAX_OUTPUT_CHARS + 20
    assert result.output.endswith("[truncated]")


async def test_a_500_is_an_error_for_the_model(runner_for: Any) -> None:
    result = await runner_for().run("broken", '{"order_id": "1"}')
    assert not result.ok
    assert error_of(result.output) == "broken answered HTTP 500: database down"


async def test_a_timeout_is_an_error_for_the_model(runner_for: Any) -> None:
    result = await runner_for().run("sluggish", '{"order_id": "1"}')
    assert error_of(result.output) == "sluggish did not answer within 0.2 s"


async def test_headers_carry_the_resolved_variables(
    runner_for: Any, tools_http: ToolServer
) -> None:
    await runner_for().run("secured", '{"order_id": "1"}')
    assert tools_http.requests[0].headers["X-Key"] == "k-from-env"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ('{"order_id": ', "the arguments are not valid JSON"),
        ('["42"]', "the arguments must be a JSON object"),
        ('{"order_id": "4x2"}', "invalid arguments at order_id: '4x2' does not match"),
        ('{"order": "42"}', "invalid arguments"),
    ],
)
async def test_bad_arguments_make_no_request(
    runner_for: Any, tools_http: ToolServer, arguments: str, message: str
) -> None:
    result = await runner_for().run("lookup", arguments)
    assert error_of(result.output).startswith(message)
    assert tools_http.requests == []


async def test_an_unknown_tool_is_an_error(runner_for: Any) -> None:
    result = await runner_for().run("launch_rockets", "{}")
    assert error_of(result.output) == "there is no tool named 'launch_rockets'"
    assert result.event().data["tool"] == "unknown"  # a bounded metrics label


async def test_end_call_answers_ok_and_asks_for_a_hang_up(runner_for: Any) -> None:
    actions = FakeActions()
    result = await runner_for(actions).run("end_call", "{}")
    assert (result.output, result.ends_call) == ('{"ok": true}', True)
    assert actions.calls == []  # the backend hangs up once the goodbye is heard


async def test_transfer_to_a_configured_name(runner_for: Any) -> None:
    actions = FakeActions()
    result = await runner_for(actions).run("transfer_call", '{"destination": "sales"}')
    assert result.ok
    assert actions.calls == [("transfer", "sales")]


async def test_transfer_elsewhere_is_refused_without_an_action(runner_for: Any) -> None:
    actions = FakeActions()
    result = await runner_for(actions).run("transfer_call", '{"destination": "+19005550100"}')
    assert "is not one of ['sales']" in error_of(result.output)
    assert actions.calls == []


async def test_a_refused_action_is_an_error_for_the_model(runner_for: Any) -> None:
    refusal = ActionFailed("call_not_found", "the call has ended")
    actions = FakeActions(refuse={"transfer": refusal})
    result = await runner_for(actions).run("transfer_call", '{"destination": "sales"}')
    assert error_of(result.output) == "the call has ended"


async def test_dtmf_tones_are_sent_upper_case(runner_for: Any) -> None:
    actions = FakeActions()
    result = await runner_for(actions).run("send_dtmf", '{"tones": "12#a"}')
    assert result.ok
    assert actions.calls == [("send_dtmf", "12#A")]


async def test_bad_tones_make_no_action(runner_for: Any) -> None:
    actions = FakeActions()
    result = await runner_for(actions).run("send_dtmf", '{"tones": "12x"}')
    assert not result.ok
    assert actions.calls == []


async def test_the_event_is_redacted_and_says_the_outcome(runner_for: Any) -> None:
    result = await runner_for().run(
        "lookup", '{"order_id": "1", "api_key": "sk-abcdefghijklmnopqrs"}'
    )
    data = result.event().data
    assert data["outcome"] == "error"  # additionalProperties: false
    assert "sk-abcdefghijklmnopqrs" not in data["arguments"]
    assert data["name"] == data["tool"] == "lookup"
    assert data["duration_ms"] >= 0
