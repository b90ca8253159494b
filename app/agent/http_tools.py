"""Custom tools from AGENT_TOOLS_FILE: a JSON list of HTTP endpoints the operator exposes.

Each entry has `name`, `description`, JSON-schema `parameters`, an http(s) `url`, optional
`headers` (values may use `${VAR}` from the environment) and `timeout_s`. A call POSTs
`{"call": {...}, "arguments": {...}}` to the URL and the response body goes back to the model.
URLs come from the file only: nothing a model or a caller says can pick where a request goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from jsonschema.exceptions import SchemaError
from jsonschema.validators import validator_for

from app.seam import CallContext
from app.settings import ConfigurationError
from app.urls import HTTP, url_problem

NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
DEFAULT_TIMEOUT_S = 10.0
MAX_TIMEOUT_S = 60.0
MAX_RESPONSE_BYTES = 64 * 1024  # read no further: a model needs a summary, not a dump
MAX_OUTPUT_CHARS = 8000
MAX_ERROR_BODY_CHARS = 200
TRUNCATED = " …[truncated]"
_FIELDS = frozenset({"name", "description", "parameters", "url", "headers", "timeout_s"})
_VARIABLE = re.compile(r"\$\{([^}]*)\}")
_VARIABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True, slots=True)
class HttpTool:
    """One custom tool as the file declares it (header values resolved)."""

    name: str
    description: str
    parameters: Mapping[str, Any]
    url: str
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets
    timeout_s: float = DEFAULT_TIMEOUT_S


class HttpToolError(Exception):
    """A custom tool's request failed; the message is what the model is told."""


def load_http_tools(
    path: Path, environ: Mapping[str, str], reserved: Collection[str] = ()
) -> tuple[HttpTool, ...]:
    """The tools in `path`; raises ConfigurationError naming the problem in one line."""
    where = f"AGENT_TOOLS_FILE {path}"
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigurationError(f"{where}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{where}: cannot read it: {exc}") from None
    try:
        entries = json.loads(text)
    except json.JSONDecodeError as exc:
        message = f"{where}: not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        raise ConfigurationError(message) from None
    if not isinstance(entries, list):
        message = f"{where}: must be a JSON list of tools, not a {type(entries).__name__}"
        raise ConfigurationError(message)
    tools: list[HttpTool] = []
    for index, entry in enumerate(entries, start=1):
        tool = _parse_tool(entry, environ, f"{where}: tool {index}")
        if tool.name in reserved:
            message = f"{where}: tool {index}: {tool.name!r} is the name of a built-in tool"
            raise ConfigurationError(message)
        if any(other.name == tool.name for other in tools):
            raise ConfigurationError(f"{where}: tool {index}: {tool.name!r} is declared twice")
        tools.append(tool)
    return tuple(tools)


async def call_http_tool(
    client: httpx.AsyncClient, tool: HttpTool, call: CallContext, arguments: Mapping[str, Any]
) -> str:
    """POST the call and the arguments to the tool; its body as text, or HttpToolError."""
    body = {
        "call": {
            "call_connection_id": call.call_connection_id,
            "caller": call.caller,
            "callee": call.callee,
        },
        "arguments": arguments,
    }
    try:
        # httpx's timeout bounds each read; this bounds the whole exchange (a slow drip too).
        async with (
            asyncio.timeout(tool.timeout_s),
            client.stream(
                "POST", tool.url, json=body, headers=dict(tool.headers), timeout=tool.timeout_s
            ) as response,
        ):
            content, truncated = await _read_capped(response)
    except (TimeoutError, httpx.TimeoutException):
        raise HttpToolError(f"{tool.name} did not answer within {tool.timeout_s:g} s") from None
    except httpx.HTTPError as exc:
        raise HttpToolError(f"{tool.name} could not be reached ({type(exc).__name__})") from None
    text = content.decode(response.charset_encoding or "utf-8", errors="replace")
    if not response.is_success:
        detail = _trim(text.strip(), MAX_ERROR_BODY_CHARS)
        message = f"{tool.name} answered HTTP {response.status_code}"
        raise HttpToolError(f"{message}: {detail}" if detail else message)
    return _output(text, response.headers.get("content-type", ""), truncated)


def _parse_tool(entry: object, environ: Mapping[str, str], where: str) -> HttpTool:
    if not isinstance(entry, dict):
        raise ConfigurationError(f"{where}: must be a JSON object")
    unknown = sorted(set(entry) - _FIELDS)
    if unknown:
        raise ConfigurationError(f"{where}: unknown field {unknown[0]!r}")
    name = entry.get("name")
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigurationError(f"{where}: name must match {NAME_PATTERN.pattern}, got {name!r}")
    where = f"{where} ({name})"
    description = entry.get("description")
    if not isinstance(description, str) or not description.strip():
        raise ConfigurationError(f"{where}: description must be a non-empty string")
    parameters = _parameters(entry.get("parameters"), where)
    url = entry.get("url")
    if not isinstance(url, str):
        raise ConfigurationError(f"{where}: url must be a string, got {url!r}")
    # Quoted without user, password and query: an Azure Functions URL holds its key in ?code=.
    problem = url_problem(url, HTTP, "an http(s) URL", "https://host/path")
    if problem is not None:
        raise ConfigurationError(f"{where}: url {problem}")
    timeout_s = entry.get("timeout_s", DEFAULT_TIMEOUT_S)
    if (
        isinstance(timeout_s, bool)
        or not isinstance(timeout_s, int | float)
        or not 0 < timeout_s <= MAX_TIMEOUT_S
    ):
        message = f"timeout_s must be a number of seconds above 0 and at most {MAX_TIMEOUT_S:g}"
        raise ConfigurationError(f"{where}: {message}, got {timeout_s!r}")
    headers = _headers(entry.get("headers", {}), environ, where)
    return HttpTool(name, description.strip(), parameters, url, headers, float(timeout_s))


def _parameters(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict) or value.get("type") != "object":
        raise ConfigurationError(f'{where}: parameters must be a JSON schema of "type": "object"')
    try:
        validator_for(value).check_schema(value)
    except SchemaError as exc:
        message = f"{where}: parameters is not a valid JSON schema: {exc.message}"
        raise ConfigurationError(message) from None
    return value


def _headers(value: object, environ: Mapping[str, str], where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ConfigurationError(f"{where}: headers must map header names to strings")

    def resolve(header: str, text: str) -> str:
        def variable(match: re.Match[str]) -> str:
            name = match.group(1)
            if not _VARIABLE_NAME.match(name):
                raise ConfigurationError(f"{where}: header {header}: bad variable ${{{name}}}")
            if name not in environ:
                message = f"header {header} uses ${{{name}}}, which is not set in the environment"
                raise ConfigurationError(f"{where}: {message}")
            return environ[name]

        return _VARIABLE.sub(variable, text)

    return {header: resolve(header, text) for header, text in value.items()}


async def _read_capped(response: httpx.Response) -> tuple[bytes, bool]:
    content = bytearray()
    async for chunk in response.aiter_bytes():
        content += chunk
        if len(content) > MAX_RESPONSE_BYTES:
            return bytes(content[:MAX_RESPONSE_BYTES]), True
    return bytes(content), False


def _output(text: str, content_type: str, truncated: bool) -> str:
    if not text.strip():
        return '{"ok": true}'
    if "json" in content_type and not truncated:
        # A body that calls itself JSON but is not goes to the model as text.
        with contextlib.suppress(json.JSONDecodeError):
            # Compact: the model pays for every token of whitespace.
            text = json.dumps(json.loads(text), ensure_ascii=False, separators=(",", ":"))
    return _trim(text, MAX_OUTPUT_CHARS) if not truncated else text[:MAX_OUTPUT_CHARS] + TRUNCATED


def _trim(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + TRUNCATED
