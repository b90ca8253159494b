"""The call bus: control actions that need a call's media socket reach the instance holding it.

The instance holding a call's media socket serves the call (`serve`) for as long as it holds
it; anyone may send the call a command (`request`) and gets the owner's reply or an error:

    CallBusError
    ├── NoMediaOwner      no instance holds the call's media socket      (HTTP 409)
    ├── CommandTimeout    the owner did not answer in time               (HTTP 504)
    └── CommandFailed     the owner answered with an error (`code`)      (HTTP 409 / 502)

A bus on an unreachable Redis raises `StoreUnavailable` (HTTP 503) from `request` and `held`.
`MemoryCallBus` serves a single instance; `RedisCallBus` (redis_bus.py) spans instances.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0


class CallBusError(Exception):
    """A command did not produce a result."""


class NoMediaOwner(CallBusError):
    """No instance holds the call's media socket."""


class CommandTimeout(CallBusError):
    """The owner did not answer within the timeout."""


class CommandFailed(CallBusError):
    """The owner answered with an error; handlers raise it to refuse a command."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class BusCommand:
    """A command as the owner's handler receives it."""

    call_connection_id: str
    name: str
    args: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class CommandReply:
    """The owner's answer: its JSON result and which instance gave it."""

    instance_id: str
    result: dict[str, Any]


CommandHandler = Callable[[BusCommand], Awaitable[Mapping[str, Any]]]
"""Acts on a command for the call it serves; returns a JSON object or raises CommandFailed."""


class CallBus(Protocol):
    """Per-call command channel between the instances of the bridge."""

    def serve(
        self, call_connection_id: str, handler: CommandHandler
    ) -> AbstractAsyncContextManager[None]:
        """Answer the call's commands with `handler` while inside; never fails on Redis errors."""
        ...

    async def request(
        self,
        call_connection_id: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> CommandReply:
        """Send `command` to the call's owner and wait for its reply (CallBusError otherwise)."""
        ...

    async def held(self, call_connection_ids: Collection[str]) -> set[str]:
        """Which of these calls some live instance serves right now."""
        ...

    async def close(self) -> None:
        """Stop serving and cancel commands in progress."""
        ...


class BusReply(BaseModel):
    """A reply on the wire (and the outcome of a handler, for both buses)."""

    model_config = ConfigDict(frozen=True)

    id: str
    instance_id: str
    ok: bool
    result: dict[str, Any] = Field(default_factory=dict)
    error_code: str | None = None
    error_message: str | None = None

    def unwrap(self) -> CommandReply:
        """The reply as a result, or the CallBusError it stands for."""
        if self.ok:
            return CommandReply(self.instance_id, self.result)
        message = self.error_message or "command failed"
        if self.error_code == "not_owner":
            raise NoMediaOwner(message)
        if self.error_code == "timeout":
            raise CommandTimeout(message)
        raise CommandFailed(self.error_code or "failed", message)


async def run_handler(
    handler: CommandHandler,
    command: BusCommand,
    request_id: str,
    instance_id: str,
    timeout_s: float,
) -> BusReply:
    """Run a handler to a reply: its result, its refusal, its timeout or its crash."""
    try:
        async with asyncio.timeout(timeout_s):
            result = await handler(command)
        # Through JSON, so both buses hand back the same plain data (and refuse the same).
        payload = json.loads(json.dumps(dict(result)))
    except CommandFailed as exc:
        return _error(request_id, instance_id, exc.code, exc.message)
    except TimeoutError:
        return _error(
            request_id, instance_id, "timeout", f"{command.name} took over {timeout_s:g}s"
        )
    except Exception:
        # The handler's bug must become an answer, not a silent timeout on the other side.
        log.exception("command %s on call %s failed", command.name, command.call_connection_id)
        return _error(request_id, instance_id, "internal", f"{command.name} failed on the owner")
    return BusReply(id=request_id, instance_id=instance_id, ok=True, result=payload)


def _error(request_id: str, instance_id: str, code: str, message: str) -> BusReply:
    return BusReply(
        id=request_id, instance_id=instance_id, ok=False, error_code=code, error_message=message
    )


class MemoryCallBus:
    """The call bus of a single instance: commands go straight to the local handler."""

    def __init__(self, instance_id: str) -> None:
        self._instance_id = instance_id
        self._handlers: dict[str, list[CommandHandler]] = {}

    @asynccontextmanager
    async def serve(self, call_connection_id: str, handler: CommandHandler) -> AsyncIterator[None]:
        # A stack: a call's new media socket takes over until it goes, then the older one again.
        handlers = self._handlers.setdefault(call_connection_id, [])
        handlers.append(handler)
        try:
            yield
        finally:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[call_connection_id]

    async def request(
        self,
        call_connection_id: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> CommandReply:
        handlers = self._handlers.get(call_connection_id)
        if not handlers:
            raise NoMediaOwner(f"no media socket holds call {call_connection_id}")
        order = BusCommand(call_connection_id, command, dict(args or {}))
        reply = await run_handler(handlers[-1], order, "local", self._instance_id, timeout_s)
        return reply.unwrap()

    async def held(self, call_connection_ids: Collection[str]) -> set[str]:
        return {c for c in call_connection_ids if c in self._handlers}

    async def close(self) -> None:
        self._handlers.clear()
