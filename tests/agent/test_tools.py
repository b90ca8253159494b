"""The tool set from settings, and AGENT_TOOLS_FILE checked at startup (one line per problem)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from app.agent.tools import ToolConfig, load_tool_config
from app.settings import ConfigurationError, Settings
from tests.agent.tool_server import http_tool, tools_file

URL = "http://127.0.0.1:9/crm"


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)


def load(tmp_path: Path, tools: Any, environ: dict[str, str] | None = None) -> ToolConfig:
    path = tools_file(tmp_path, tools)
    return load_tool_config(settings(agent_tools_file=path), environ or {})


def test_end_call_is_offered_by_default_and_alone() -> None:
    config = load_tool_config(settings(), {})
    assert config.names == ["end_call"]
    assert config.definitions()[0]["type"] == "function"
    assert config.definitions()[0]["parameters"] == {
        "type": "object",
        "properties": {},
        "additionalProperties": False,
    }


def test_end_call_can_be_turned_off() -> None:
    assert load_tool_config(settings(agent_end_call_tool=False), {}).names == []


def test_transfer_call_offers_exactly_the_configured_names() -> None:
    targets = {"support": "+14255550101", "sales": "+14255550100"}
    config = load_tool_config(settings(transfer_targets=targets), {})
    transfer = next(d for d in config.definitions() if d["name"] == "transfer_call")
    parameters: Any = transfer["parameters"]
    assert parameters["properties"]["destination"]["enum"] == ["sales", "support"]
    assert parameters["required"] == ["destination"]
    assert "+1425" not in json.dumps(transfer)  # the model sees names, never numbers


def test_send_dtmf_is_offered_only_when_enabled() -> None:
    assert "send_dtmf" not in load_tool_config(settings(), {}).names
    config = load_tool_config(settings(agent_dtmf_tool=True), {})
    dtmf = next(d for d in config.definitions() if d["name"] == "send_dtmf")
    parameters: Any = dtmf["parameters"]
    assert parameters["properties"]["tones"]["pattern"] == "^[0-9*#A-Da-d]{1,18}$"


def test_custom_tools_follow_the_built_in_ones(tmp_path: Path) -> None:
    config = load(tmp_path, [http_tool("crm_lookup", URL, timeout_s=2.5)])
    assert config.names == ["end_call", "crm_lookup"]
    spec = config.get("crm_lookup")
    assert spec is not None
    assert spec.http is not None
    assert spec.http.timeout_s == 2.5
    assert spec.definition() == {
        "type": "function",
        "name": "crm_lookup",
        "description": "The crm_lookup tool.",
        "parameters": http_tool("crm_lookup", URL)["parameters"],
    }


def test_header_variables_come_from_the_given_environment(tmp_path: Path) -> None:
    entry = http_tool("crm", URL, headers={"Authorization": "Bearer ${CRM_TOKEN}", "X-A": "b"})
    config = load(tmp_path, [entry], {"CRM_TOKEN": "s3cret"})
    spec = config.get("crm")
    assert spec is not None
    assert spec.http is not None
    assert spec.http.headers == {"Authorization": "Bearer s3cret", "X-A": "b"}
    assert "s3cret" not in repr(spec)


def test_a_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigurationError, match=r"AGENT_TOOLS_FILE .*nope\.json: no such file"):
        load_tool_config(settings(agent_tools_file=path), {})


def test_a_file_that_is_not_json_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tools.json"
    path.write_text("[{oops", encoding="utf-8")
    with pytest.raises(ConfigurationError, match=r"not valid JSON .* line 1"):
        load_tool_config(settings(agent_tools_file=path), {})


def test_a_file_that_is_not_a_list_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="must be a JSON list of tools, not a dict"):
        load(tmp_path, {"name": "crm"})


@pytest.mark.parametrize("name", ["has space", "", "x" * 65, "é"])
def test_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=r"tool 1: name must match"):
        load(tmp_path, [http_tool(name, URL)])


def test_a_duplicate_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"tool 2: 'crm' is declared twice"):
        load(tmp_path, [http_tool("crm", URL), http_tool("crm", URL)])


@pytest.mark.parametrize("name", ["end_call", "transfer_call", "send_dtmf"])
def test_a_built_in_name_is_refused_even_when_that_tool_is_off(tmp_path: Path, name: str) -> None:
    with pytest.raises(ConfigurationError, match=f"'{name}' is the name of a built-in tool"):
        load(tmp_path, [http_tool(name, URL)])


def test_a_bad_schema_is_refused(tmp_path: Path) -> None:
    entry = http_tool("crm", URL, parameters={"type": "object", "properties": {"a": 5}})
    with pytest.raises(ConfigurationError, match=r"\(crm\): parameters is not a valid JSON schema"):
        load(tmp_path, [entry])


def test_parameters_must_describe_an_object(tmp_path: Path) -> None:
    entry = http_tool("crm", URL, parameters={"type": "string"})
    with pytest.raises(ConfigurationError, match=r'parameters must be a JSON schema of "type"'):
        load(tmp_path, [entry])


@pytest.mark.parametrize(
    "url",
    ["ftp://crm.example/x", "file:///etc/passwd", "crm", "crm.example:443/x", "http:///x"],
)
def test_a_bad_url_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(
        ConfigurationError, match=r"\(crm\): url '.*' (is not an http\(s\) URL|has no host)"
    ):
        load(tmp_path, [{**http_tool("crm", URL), "url": url}])


@pytest.mark.parametrize("url", [7, None])
def test_a_url_that_is_no_string_is_refused(tmp_path: Path, url: object) -> None:
    with pytest.raises(ConfigurationError, match=r"\(crm\): url must be a string"):
        load(tmp_path, [{**http_tool("crm", URL), "url": url}])


def test_a_refused_url_is_quoted_without_its_secrets(tmp_path: Path) -> None:
    url = "ftp://user:hunter2@crm.example/x?code=s3cret#frag"
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, [{**http_tool("crm", URL), "url": url}])
    assert "'ftp://***@crm.example/x' is not an http(s) URL" in str(caught.value)
    assert "hunter2" not in str(caught.value)
    assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("timeout", [0, -1, 61, "10", True])
def test_a_bad_timeout_is_refused(tmp_path: Path, timeout: object) -> None:
    with pytest.raises(ConfigurationError, match=r"\(crm\): timeout_s must be a number"):
        load(tmp_path, [http_tool("crm", URL, timeout_s=timeout)])


def test_an_unknown_variable_is_refused(tmp_path: Path) -> None:
    entry = http_tool("crm", URL, headers={"Authorization": "Bearer ${CRM_TOKEN}"})
    with pytest.raises(ConfigurationError, match=r"uses \$\{CRM_TOKEN\}, which is not set"):
        load(tmp_path, [entry], {"OTHER": "x"})


def test_an_unknown_field_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"tool 1: unknown field 'method'"):
        load(tmp_path, [http_tool("crm", URL, method="GET")])


def test_a_missing_description_is_refused(tmp_path: Path) -> None:
    entry = http_tool("crm", URL)
    del entry["description"]
    with pytest.raises(ConfigurationError, match=r"\(crm\): description must be"):
        load(tmp_path, [entry])


def test_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, [http_tool("crm", URL, headers={"A": "${NOPE}"})])
    assert "\n" not in str(caught.value)


def test_create_app_refuses_a_bad_tools_file(tmp_path: Path) -> None:
    from app.main import create_app

    path = tools_file(tmp_path, [http_tool("crm", "ftp://x")])
    with pytest.raises(ConfigurationError, match=r"\(crm\): url 'ftp://x' is not an http"):
        create_app(settings(agent_tools_file=path))
