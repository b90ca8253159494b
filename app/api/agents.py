"""The lines: list the agents and routes, and reload AGENTS_FILE without a restart."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, SecretStr

from app.agents.models import Agent, Agents
from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.security.dependencies import ControlKeyDep
from app.settings import ConfigurationError, Settings
from app.urls import quoted_url

router = APIRouter(prefix="/api/agents", tags=["agents"], dependencies=[ControlKeyDep])


class AgentView(BaseModel):
    """One agent: its backend and what its entry sets (secrets redacted)."""

    name: str
    media_backend: str
    settings: dict[str, object]


class AgentsView(BaseModel):
    """The agents and routes new calls get now."""

    version: int
    agents_file: str | None
    agents: list[AgentView]
    routes: dict[str, str]
    default: str | None


@router.get(
    "", summary="The agents and the routes of called numbers to them", response_model=AgentsView
)
async def list_agents(services: ServicesDep) -> AgentsView:
    return agents_view(services.agents.agents, services.settings)


@router.post(
    "/reload",
    summary="Re-read AGENTS_FILE: new calls get the new agents, running calls keep theirs",
    response_model=AgentsView,
    responses={400: {"description": "The file is invalid: nothing changed"}},
)
async def reload_agents(services: ServicesDep) -> AgentsView:
    try:
        agents = await services.agents.reload()
    except ConfigurationError as exc:
        raise ApiError(400, "invalid_agents_file", str(exc)) from None
    return agents_view(agents, services.settings)


def agents_view(agents: Agents, settings: Settings) -> AgentsView:
    """What GET /api/agents answers: no secret, no URL query (it may carry a key)."""
    file = settings.agents_file
    return AgentsView(
        version=agents.version,
        agents_file=str(file) if file is not None else None,
        agents=[_agent_view(agent) for agent in agents.agents.values()],
        routes=dict(agents.routes),
        default=agents.default,
    )


def _agent_view(agent: Agent) -> AgentView:
    shown: dict[str, object] = {}
    for key, value in agent.overrides.items():
        if isinstance(getattr(agent.settings, key, None), SecretStr):
            shown[key] = "**********"
        elif key.endswith("_url") and isinstance(value, str):
            shown[key] = quoted_url(value).strip("'")
        else:
            shown[key] = value
    return AgentView(name=agent.name, media_backend=agent.settings.media_backend, settings=shown)
