"""Reading AGENTS_FILE into `Agents`; every problem is one line naming the agent and the key.

The file is YAML (`.yaml`, `.yml`) or JSON (any other name):

    agents: {<name>: {<per-call setting, lowercased>: <value>, ...}, ...}
    routes: {"+18005550100": <name>, "4:+18005550101": <name>, "8:acs:...": <name>, default: <name>}
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from app.agent.tools import load_tool_config
from app.agents.models import (
    DEFAULT_AGENT,
    DEFAULT_ROUTE,
    Agent,
    Agents,
    called_party_key,
    is_per_call,
)
from app.media.failover import FailoverPolicy
from app.settings import ConfigurationError, Settings, describe_invalid_settings

_NAME = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")


def load_agents(settings: Settings, environ: Mapping[str, str], *, version: int = 1) -> Agents:
    """AGENTS_FILE's agents over `settings`, or the one implicit agent without it; raises
    ConfigurationError. Reads files: call at startup, or off the event loop."""
    if settings.agents_file is None:
        # The global settings' own refusals (AGENT_TOOLS_FILE ...) name no agent.
        agent = _read_files(DEFAULT_AGENT, settings, {}, environ)
        return Agents({DEFAULT_AGENT: agent}, {}, DEFAULT_AGENT, version)
    document = read_document(settings.agents_file)
    return parse_agents(document, settings, environ, version=version)


def read_document(path: Path) -> object:
    """The file's content, parsed as YAML or JSON by its extension."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise _refuse(f"cannot read {str(path)!r} ({exc.strerror or exc})") from None
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            return yaml.safe_load(text)
        return json.loads(text)
    except (yaml.YAMLError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise _refuse(f"{str(path)!r} is not valid {_kind(path)}: {first}") from None


def parse_agents(
    document: object, settings: Settings, environ: Mapping[str, str], *, version: int = 1
) -> Agents:
    """`Agents` from a parsed file."""
    if not isinstance(document, dict) or not isinstance(document.get("agents"), dict):
        raise _refuse("needs an `agents` mapping of names to settings")
    unknown = sorted(set(document) - {"agents", "routes"})
    if unknown:
        raise _refuse(f"unknown top-level key {unknown[0]!r}: use agents and routes")
    agents: dict[str, Agent] = {}
    for name, values in document["agents"].items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise _refuse(f"agent name {name!r}: use 1-64 letters, digits, _ or -")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise _refuse(f"agent {name!r}: needs a mapping of settings")
        agents[name] = build_agent(name, settings, values, environ)
    if not agents:
        raise _refuse("defines no agents")
    routes, default = _routes(document.get("routes") or {}, agents)
    return Agents(agents, routes, default, version)


def build_agent(
    name: str, settings: Settings, values: Mapping[str, Any], environ: Mapping[str, str]
) -> Agent:
    """The agent `name`: `settings` with `values` applied, validated as the settings are."""
    for key in values:
        if not isinstance(key, str) or not is_per_call(key):
            raise _refuse(
                f"agent {name!r}: {str(key).lower()!r} is not a per-call setting "
                "(see the README's list of agent keys)"
            )
    try:
        # Validation runs every check of the global settings (credentials of the backend,
        # transfer targets, failover) on the agent's combination.
        agent_settings = Settings.model_validate({**dict(settings), **values})
    except ValidationError as exc:
        raise _refuse(f"agent {name!r}: {describe_invalid_settings(exc)}") from None
    try:
        return _read_files(name, agent_settings, values, environ)
    except (ConfigurationError, ValueError) as exc:
        raise _refuse(f"agent {name!r}: {exc}") from None


def _read_files(
    name: str, settings: Settings, values: Mapping[str, Any], environ: Mapping[str, str]
) -> Agent:
    """The agent with what its settings name read once: tools file, failover prompt."""
    tools = load_tool_config(settings, environ)
    failover = FailoverPolicy.from_settings(settings)
    return Agent(name, settings, tools, failover, dict(values))


def _routes(raw: object, agents: Mapping[str, Agent]) -> tuple[dict[str, str], str | None]:
    if not isinstance(raw, dict):
        raise _refuse("`routes` must map called numbers or ids to agent names")
    routes: dict[str, str] = {}
    default: str | None = None
    for called, agent in raw.items():
        if not isinstance(agent, str) or agent not in agents:
            raise _refuse(f"route {str(called)!r}: no agent named {agent!r}")
        if called == DEFAULT_ROUTE:
            default = agent
            continue
        key = called_party_key(str(called))
        if key in routes:
            raise _refuse(f"route {str(called)!r}: that line is routed twice")
        routes[key] = agent
    return routes, default


def _kind(path: Path) -> str:
    return "YAML" if path.suffix.lower() in (".yaml", ".yml") else "JSON"


def _refuse(problem: str) -> ConfigurationError:
    return ConfigurationError(f"AGENTS_FILE: {problem}")
