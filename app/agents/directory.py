"""The app's lines as they are now: the current `Agents`, each agent's backend factory, and a
reload that swaps both at once for new calls.

Calls in progress keep the agent they started with: the media session holds the `Agent`
object, and a socket that comes back to this instance (a resume) gets the agent its call was
pinned to here, whatever was reloaded since.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Mapping
from contextlib import AsyncExitStack

from app.agents.loading import load_agents
from app.agents.models import Agent, Agents
from app.backends.base import Backend
from app.backends.catalog import BackendFactory, open_backend_factory
from app.settings import Settings

log = logging.getLogger(__name__)


class AgentDirectory:
    """The current agents; `reload()` replaces them, `for_call()` picks a call's agent."""

    def __init__(
        self,
        settings: Settings,
        environ: Mapping[str, str],
        stack: AsyncExitStack,
        *,
        max_pinned: int = 10_000,
    ) -> None:
        self._settings = settings
        self._environ = environ
        # The app's stack: backend resources of every version stay open until shutdown (a
        # running call may still use them; reloads are rare, each adds a few clients at most).
        self._stack = stack
        self._agents: Agents | None = None
        self._pinned: OrderedDict[str, Agent] = OrderedDict()
        # Every version's factories by the identity of their agent's settings (kept alive here):
        # `backend(settings)` is the app's one backend seam (`Services.backend_factory`).
        self._factories: dict[int, tuple[Settings, BackendFactory]] = {}
        self._max_pinned = max_pinned
        self._reloading = asyncio.Lock()

    async def open(self, agents: Agents) -> None:
        """Serve `agents` (validated already), their backend factories opened."""
        for agent in agents.agents.values():
            factory = await open_backend_factory(
                agent.settings.media_backend, agent.settings, self._stack, tools=agent.tools
            )
            self._factories[id(agent.settings)] = (agent.settings, factory)
        # One assignment, no await before it returns: a new call sees the old lines or the new.
        self._agents = agents

    def backend(self, settings: Settings) -> Backend:
        """A new backend for a call of the agent whose settings are `settings`."""
        entry = self._factories.get(id(settings))
        if entry is None or entry[0] is not settings:
            raise LookupError("these settings are no agent's: open the agents first")
        return entry[1](settings)

    @property
    def agents(self) -> Agents:
        if self._agents is None:
            raise RuntimeError("the agent directory is not open")
        return self._agents

    async def reload(self) -> Agents:
        """Re-read AGENTS_FILE (off the event loop) and serve it; ConfigurationError changes
        nothing."""
        async with self._reloading:
            version = self.agents.version + 1
            agents = await asyncio.to_thread(
                load_agents, self._settings, self._environ, version=version
            )
            await self.open(agents)
        log.info(
            "agents reloaded: version %d, agents %s, %d routes",
            version,
            ", ".join(sorted(agents.agents)),
            len(agents.routes),
        )
        return agents

    def route(self, called: str | None) -> Agent | None:
        """The agent a call to `called` gets now; None when no route nor default matches."""
        return self.agents.route(called)

    def line_agent(self, called: str | None) -> str | None:
        """The name of the agent a call to `called` gets now (the intake's router)."""
        agent = self.route(called)
        return agent.name if agent is not None else None

    def named(self, name: str | None) -> Agent | None:
        """The current agent `name` (the default one for None)."""
        return self.agents.get(name)

    def for_call(self, call_connection_id: str, name: str | None) -> Agent:
        """The agent serving a call's media here: the one it was pinned to on this instance,
        else the current agent `name`, else the default (or the first) agent."""
        pinned = self._pinned.get(call_connection_id)
        if pinned is None:
            pinned = self.named(name) or self.named(None) or next(iter(self.agents.agents.values()))
            if name is not None and pinned.name != name:
                log.warning("call's agent %r is not configured here: using %r", name, pinned.name)
            self._pinned[call_connection_id] = pinned
            while len(self._pinned) > self._max_pinned:
                self._pinned.popitem(last=False)  # the oldest calls have long ended
        else:
            self._pinned.move_to_end(call_connection_id)
        return pinned
