"""An agent is a name and the settings of its calls; `Agents` is one version of the lines.

A call keeps the `Agent` it started with: the objects are immutable, and a reload builds a new
`Agents` rather than changing this one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from app.agent.tools import ToolConfig
from app.media.failover import FailoverPolicy
from app.settings import Settings

DEFAULT_AGENT = "default"  # the implicit agent of a deployment without AGENTS_FILE
DEFAULT_ROUTE = "default"  # the routes key of the agent for calls no other route matches

# The settings an agent may set (lowercased names): what differs per call. Everything else
# (ACS, security, scale-out, media format) belongs to the deployment. `pipecat_*` settings are
# per call too, whichever of them the Settings class has.
PER_CALL_KEYS = frozenset(
    {
        "media_backend",
        "echo_delay_ms",
        "backend_ws_url",
        "backend_ws_auth_token",
        "backend_ws_sample_rate",
        "openai_realtime_model",
        "azure_openai_deployment",
        "realtime_instructions",
        "realtime_instructions_file",
        "realtime_voice",
        "realtime_turn_detection",
        "realtime_vad_threshold",
        "realtime_vad_prefix_padding_ms",
        "realtime_vad_silence_duration_ms",
        "realtime_vad_eagerness",
        "realtime_input_transcription",
        "realtime_transcription_model",
        "realtime_greeting",
        "azure_voicelive_model",
        "azure_voicelive_agent_id",
        "azure_voicelive_agent_project",
        "azure_voicelive_voice",
        "azure_voicelive_turn_detection",
        "azure_voicelive_vad_threshold",
        "azure_voicelive_vad_prefix_padding_ms",
        "azure_voicelive_vad_silence_duration_ms",
        "azure_voicelive_remove_filler_words",
        "azure_voicelive_end_of_utterance",
        "azure_voicelive_eou_threshold",
        "azure_voicelive_eou_timeout_ms",
        "azure_voicelive_input_transcription",
        "azure_voicelive_transcription_model",
        "azure_voicelive_transcription_language",
        "agent_end_call_tool",
        "agent_dtmf_tool",
        "agent_tools_file",
        "transfer_targets",
        "backend_failover",
        "backend_failover_after_s",
        "backend_failover_prompt",
    }
)


def is_per_call(key: str) -> bool:
    """True for a setting an agent may set."""
    return key in PER_CALL_KEYS or (key.startswith("pipecat_") and key in Settings.model_fields)


@dataclass(frozen=True, slots=True)
class Agent:
    """One agent: its name, its calls' settings, and what is read from files once."""

    name: str
    settings: Settings
    tools: ToolConfig
    failover: FailoverPolicy
    # What the file set (for GET /api/agents); the rest is the global settings.
    overrides: Mapping[str, object] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Agents:
    """The agents and routes of one version of AGENTS_FILE (or the implicit agent)."""

    agents: Mapping[str, Agent]
    routes: Mapping[str, str]  # normalized called party -> agent name
    default: str | None  # the agent of unrouted calls, if any
    version: int = 1

    def get(self, name: str | None) -> Agent | None:
        """The agent named `name`; the default agent for None."""
        if name is None:
            return self.agents.get(self.default) if self.default else None
        return self.agents.get(name)

    def route(self, called: str | None) -> Agent | None:
        """The agent for a call to `called` (raw id or +E.164); None: no route, no default."""
        name = self.routes.get(called_party_key(called)) if called else None
        return self.get(name)


def called_party_key(called: str) -> str:
    """A called party as the routes key it: `4:+1800...` and `+1800...` are one number."""
    value = called.strip()
    if value.startswith("4:+"):
        return value[2:]
    return value
