"""One call's tool executions: a model's function call in, a result for the model out.

Whatever the model sends (an unknown tool, arguments that are not JSON or break the schema, a
destination nobody configured) and whatever a tool does (time out, answer 500) ends as an
`{"error": ...}` output the model can talk about; nothing here raises into the backend.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from jsonschema.exceptions import best_match

from app.agent.http_tools import HttpToolError, call_http_tool
from app.agent.tools import END_CALL, SEND_DTMF, TRANSFER_CALL, ToolConfig, ToolSpec
from app.seam import ActionFailed, BackendEvent, CallActions, CallContext
from app.security.redaction import redact

MAX_RECORDED_ARGUMENTS = 2000
MAX_RECORDED_RESULT = 500
OK: str = '{"ok": true}'


@dataclass(frozen=True, slots=True)
class ToolResult:
    """What one tool call did: `output` goes back to the model as the call's result."""

    name: str
    arguments: str
    output: str
    ok: bool
    duration_ms: float
    known: bool = True  # a tool the model was offered (not a name it made up)
    ends_call: bool = False  # end_call: hang up once the goodbye has been heard

    def event(self) -> BackendEvent:
        """The call's record of it: arguments and result redacted as logs are, and trimmed."""
        return BackendEvent(
            "tool_call",
            {
                "name": self.name[:64],
                "tool": self.name if self.known else "unknown",  # a bounded metrics label
                "arguments": redact(self.arguments)[:MAX_RECORDED_ARGUMENTS],
                "outcome": "ok" if self.ok else "error",
                "result": redact(self.output)[:MAX_RECORDED_RESULT],
                "duration_ms": round(self.duration_ms, 1),
            },
        )


class ToolFailed(Exception):
    """A tool call that goes back to the model as `{"error": message}`."""


class ToolRunner:
    """Runs the configured tools for one call, with the call's actions."""

    def __init__(
        self,
        tools: ToolConfig,
        call: CallContext,
        actions: CallActions,
        *,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self.tools = tools
        self._call = call
        self._actions = actions
        self._client = client
        self._own_client: httpx.AsyncClient | None = None

    async def run(self, name: str, arguments: str) -> ToolResult:
        """Check and execute one function call; never raises for anything the model sent."""
        started = time.monotonic()
        spec = self.tools.get(name)
        ends_call = False
        try:
            if spec is None:
                raise ToolFailed(f"there is no tool named {name!r}")
            output = await self._execute(spec, _checked(spec, arguments))
            ok, ends_call = True, spec.name == END_CALL
        except ToolFailed as exc:
            output, ok = json.dumps({"error": str(exc)}), False
        duration_ms = (time.monotonic() - started) * 1000.0
        return ToolResult(name, arguments, output, ok, duration_ms, spec is not None, ends_call)

    def failed(self, name: str, arguments: str, message: str) -> ToolResult:
        """The result of a call that broke in an unexpected way (reported, not raised)."""
        output = json.dumps({"error": message})
        return ToolResult(name, arguments, output, False, 0.0, self.tools.get(name) is not None)

    async def hang_up(self) -> None:
        """end_call's action, once the backend has played the goodbye; raises ActionFailed."""
        await self._actions.hang_up()

    async def close(self) -> None:
        client, self._own_client = self._own_client, None
        if client is not None:
            await client.aclose()

    async def _execute(self, spec: ToolSpec, arguments: Mapping[str, Any]) -> str:
        try:
            if spec.name == END_CALL:
                return OK  # the backend hangs up after the goodbye
            if spec.name == TRANSFER_CALL:
                destination = str(arguments["destination"])
                await self._actions.transfer(destination)
                return json.dumps({"ok": True, "transferring_to": destination})
            if spec.name == SEND_DTMF:
                await self._actions.send_dtmf(str(arguments["tones"]).upper())
                return OK
        except ActionFailed as exc:
            raise ToolFailed(exc.message) from exc
        if spec.http is None:  # a built-in this runner does not know (a newer config)
            raise ToolFailed(f"{spec.name} is not available")
        try:
            return await call_http_tool(await self._http(), spec.http, self._call, arguments)
        except HttpToolError as exc:
            raise ToolFailed(str(exc)) from exc

    async def _http(self) -> httpx.AsyncClient:
        if self._client is not None:
            return self._client
        if self._own_client is None:
            # Without the app's shared client: build one off the loop (it loads trust stores).
            self._own_client = await asyncio.to_thread(httpx.AsyncClient, follow_redirects=False)
        return self._own_client


def _checked(spec: ToolSpec, arguments: str) -> Mapping[str, Any]:
    try:
        value = json.loads(arguments) if arguments.strip() else {}
    except json.JSONDecodeError as exc:
        raise ToolFailed(f"the arguments are not valid JSON: {exc.msg}") from None
    if not isinstance(value, dict):
        raise ToolFailed("the arguments must be a JSON object")
    error = best_match(spec.validator.iter_errors(value))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path)
        raise ToolFailed(f"invalid arguments{f' at {where}' if where else ''}: {error.message}")
    return value
