"""AGENTS_FILE at startup: the issue's YAML loads; what cannot work refuses in one line
naming the agent and the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.agents.loading import load_agents
from app.main import create_app
from app.settings import ConfigurationError, Settings

EXAMPLE = """\
agents:
  sales:
    media_backend: openai
    realtime_instructions: You are Contoso's sales desk. Keep answers short.
    realtime_greeting: Greet the caller and ask what they would like to buy.
    transfer_targets: {"desk": "+14255550100"}
  support:
    media_backend: websocket
    backend_ws_url: wss://support-bot.internal/acs
routes:
  "+18005550100": sales
  "+18005550101": support
  default: support
"""


def settings_with(
    tmp_path: Path, text: str, name: str = "agents.yaml", **values: object
) -> Settings:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return Settings(_env_file=None, agents_file=path, **values)  # type: ignore[arg-type]


def refusal(settings: Settings) -> str:
    with pytest.raises(ConfigurationError) as caught:
        create_app(settings)
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_documented_example_loads(tmp_path: Path) -> None:
    agents = load_agents(settings_with(tmp_path, EXAMPLE, openai_api_key="sk-x"), {})
    sales = agents.route("4:+18005550100")
    assert sales is not None
    assert sales.settings.media_backend == "openai"
    assert sales.settings.transfer_targets == {"desk": "+14255550100"}
    assert sales.settings.realtime_voice == "alloy"  # not set: the global setting
    assert [spec.name for spec in sales.tools.tools] == ["end_call", "transfer_call"]
    other = agents.route("8:acs:someone")
    assert other is not None
    assert other.name == "support"


def test_a_backend_without_its_credentials_refuses_startup(tmp_path: Path) -> None:
    assert refusal(settings_with(tmp_path, EXAMPLE)) == (
        "AGENTS_FILE: agent 'sales': MEDIA_BACKEND=openai needs OPENAI_API_KEY"
    )


def test_a_key_that_is_not_per_call_refuses_startup(tmp_path: Path) -> None:
    text = "agents:\n  sales:\n    redis_url: redis://elsewhere:6379/0\n"
    assert "agent 'sales': 'redis_url' is not a per-call setting" in refusal(
        settings_with(tmp_path, text)
    )


def test_a_transfer_target_that_does_not_parse_refuses_startup(tmp_path: Path) -> None:
    text = '{"agents": {"sales": {"transfer_targets": {"desk": "555-0100"}}}}'
    message = refusal(settings_with(tmp_path, text, name="agents.json"))
    assert message.startswith("AGENTS_FILE: agent 'sales': TRANSFER_TARGETS: 'desk':")


def test_a_route_to_no_agent_refuses_startup(tmp_path: Path) -> None:
    text = "agents:\n  sales: {}\nroutes:\n  '+18005550100': billing\n"
    assert refusal(settings_with(tmp_path, text)) == (
        "AGENTS_FILE: route '+18005550100': no agent named 'billing'"
    )


def test_a_file_that_is_not_yaml_refuses_startup(tmp_path: Path) -> None:
    assert refusal(settings_with(tmp_path, "agents: [")).startswith("AGENTS_FILE: ")


def test_without_a_file_one_implicit_agent_has_the_global_settings() -> None:
    settings = Settings(_env_file=None, echo_delay_ms=4)
    agents = load_agents(settings, {})
    agent = agents.route("+18005550100")
    assert agent is not None
    assert agent.name == "default"
    assert agent.settings.echo_delay_ms == 4
