"""The tools a voice agent is offered, from settings: what a model may ask the bridge to do.

end_call        on unless AGENT_END_CALL_TOOL=false: hang up once the goodbye has been heard
transfer_call   only with TRANSFER_TARGETS: a transfer to one of the configured names (an enum)
send_dtmf       only with AGENT_DTMF_TOOL=true: DTMF tones to the other party
custom          the HTTP tools of AGENT_TOOLS_FILE (app.agent.http_tools)

The set is built once per app (`load_tool_config`) and offered on every call.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from jsonschema.protocols import Validator
from jsonschema.validators import validator_for
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam

from app.agent.http_tools import HttpTool, load_http_tools
from app.settings import Settings

END_CALL: Final = "end_call"
TRANSFER_CALL: Final = "transfer_call"
SEND_DTMF: Final = "send_dtmf"
BUILT_IN_NAMES: Final = frozenset({END_CALL, TRANSFER_CALL, SEND_DTMF})
DTMF_PATTERN: Final = r"^[0-9*#A-Da-d]{1,18}$"


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One tool: its definition for the model, its argument check, and (custom) its endpoint."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    validator: Validator = field(compare=False, repr=False)
    http: HttpTool | None = None

    def definition(self) -> RealtimeFunctionToolParam:
        """The tool as a Realtime `session.tools` entry (GA format)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": dict(self.parameters),
        }


@dataclass(frozen=True, slots=True)
class ToolConfig:
    """The tools of every call, in the order they are offered."""

    tools: tuple[ToolSpec, ...] = ()

    @classmethod
    def built_in(cls, settings: Settings) -> ToolConfig:
        """The built-in tools the settings turn on (no AGENT_TOOLS_FILE)."""
        return cls(tuple(_built_in(settings)))

    def get(self, name: str) -> ToolSpec | None:
        return next((tool for tool in self.tools if tool.name == name), None)

    @property
    def names(self) -> list[str]:
        return [tool.name for tool in self.tools]

    @property
    def has_http_tools(self) -> bool:
        return any(tool.http is not None for tool in self.tools)

    def definitions(self) -> list[RealtimeFunctionToolParam]:
        return [tool.definition() for tool in self.tools]


def load_tool_config(settings: Settings, environ: Mapping[str, str]) -> ToolConfig:
    """The built-in tools plus AGENT_TOOLS_FILE's, `${VAR}` in headers taken from `environ`;
    raises ConfigurationError (one line)."""
    tools = _built_in(settings)
    if settings.agent_tools_file is not None:
        for http in load_http_tools(settings.agent_tools_file, environ, BUILT_IN_NAMES):
            tools.append(_spec(http.name, http.description, http.parameters, http))
    return ToolConfig(tuple(tools))


def _built_in(settings: Settings) -> list[ToolSpec]:
    tools: list[ToolSpec] = []
    if settings.agent_end_call_tool:
        tools.append(
            _spec(
                END_CALL,
                "Hang up the call when the conversation is over. Say goodbye in the same "
                "response: the caller hears it in full before the line goes dead.",
                {"type": "object", "properties": {}, "additionalProperties": False},
            )
        )
    if settings.transfer_targets:
        names = sorted(settings.transfer_targets)
        tools.append(
            _spec(
                TRANSFER_CALL,
                "Transfer the caller to a person or team. Tell the caller first; only these "
                f"destinations exist: {', '.join(names)}.",
                {
                    "type": "object",
                    "properties": {
                        "destination": {
                            "type": "string",
                            "enum": names,
                            "description": "Where to transfer the caller.",
                        }
                    },
                    "required": ["destination"],
                    "additionalProperties": False,
                },
            )
        )
    if settings.agent_dtmf_tool:
        tools.append(
            _spec(
                SEND_DTMF,
                "Send DTMF tones (keypad presses) on the call, e.g. to navigate a phone menu.",
                {
                    "type": "object",
                    "properties": {
                        "tones": {
                            "type": "string",
                            "pattern": DTMF_PATTERN,
                            "description": "Up to 18 of 0-9, *, # and A-D, in order.",
                        }
                    },
                    "required": ["tones"],
                    "additionalProperties": False,
                },
            )
        )
    return tools


def _spec(
    name: str, description: str, parameters: Mapping[str, Any], http: HttpTool | None = None
) -> ToolSpec:
    validator = validator_for(parameters)(parameters)
    return ToolSpec(name, description, parameters, validator, http)
