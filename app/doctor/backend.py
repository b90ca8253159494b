"""The configured media backend is reachable with its credentials: the handshake each call
would make (a model's or Voice Live's, the downstream's), opened and closed at once."""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from pathlib import Path

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from app.backends.realtime.connection import (
    EntraTokenProvider,
    azure_connector,
    default_azure_credential,
    openai_connector,
)
from app.backends.realtime.errors import RealtimeError, RealtimeFatal
from app.backends.realtime.socket import RealtimeService, RealtimeSocket
from app.doctor.http import Clients
from app.doctor.report import CheckResult, failed, passed, warned
from app.settings import Settings

KEY_SETTINGS = {
    "openai": "OPENAI_API_KEY",
    "azure-openai": "AZURE_OPENAI_API_KEY (or, without it, the managed identity's role)",
    "voice-live": "AZURE_VOICELIVE_API_KEY (or, without it, the managed identity's role)",
}
ENDPOINT_SETTINGS = {
    "openai": "OPENAI_BASE_URL and OPENAI_REALTIME_MODEL",
    "azure-openai": "AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT",
    "voice-live": "AZURE_VOICELIVE_ENDPOINT and AZURE_VOICELIVE_MODEL / _AGENT_*",
}
FIRST_EVENT_TIMEOUT_S = 5.0


async def check_backend(settings: Settings, clients: Clients) -> CheckResult:
    """`backend`: what MEDIA_BACKEND needs, reached as a call would."""
    backend = settings.media_backend
    name = f"backend.{backend}"
    if backend == "echo":
        return passed(name, "echo needs nothing outside the service")
    if backend == "recorder":
        return await asyncio.to_thread(_check_recordings_dir, name, settings.recordings_dir)
    if backend == "websocket":
        return await _check_downstream(name, settings.backend_ws_url or "", clients)
    if backend in KEY_SETTINGS:
        return await _check_realtime(name, settings)
    if backend == "pipecat":
        # Importing runs the bot file's top level, which may block: off the loop.
        return await asyncio.to_thread(_check_pipecat_bot, name, settings.pipecat_bot)
    # A backend added after doctor learnt its checks: say so rather than guess.
    return warned(name, f"doctor has no check for MEDIA_BACKEND={backend} yet")


def _check_pipecat_bot(name: str, target: str | None) -> CheckResult:
    # Imported here: the pipecat extra is heavy, and absent unless MEDIA_BACKEND=pipecat.
    from app.backends.pipecat import load_bot
    from app.settings import ConfigurationError

    if target is None:
        from app.backends.pipecat import cascade  # the bundled bot and its services

        return passed(name, f"the bundled cascade imports ({cascade.__name__})")
    try:
        load_bot(target)
    except ConfigurationError as exc:
        return failed(
            name,
            str(exc),
            "make PIPECAT_BOT module:function or path/to/file.py:function name an async "
            "run_bot(transport, call) that imports with the service's own environment",
        )
    return passed(name, f"PIPECAT_BOT {target} imports and names an async run_bot")


def _check_recordings_dir(name: str, directory: Path) -> CheckResult:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as exc:
        return failed(
            name,
            f"cannot write to RECORDINGS_DIR {directory}: {exc.strerror or exc}",
            "point RECORDINGS_DIR at a writable directory (in the container: /srv/recordings)",
        )
    return passed(name, f"RECORDINGS_DIR {directory} is writable")


async def _check_downstream(name: str, url: str, clients: Clients) -> CheckResult:
    # The URL carries whatever token the downstream wants (BACKEND_WS_URL's query).
    tls = clients.tls if url.startswith("wss://") else None
    shown = url.split("?", 1)[0]
    try:
        async with asyncio.timeout(clients.timeout_s), connect(url, ssl=tls, proxy=None):
            pass
    except InvalidStatus as exc:
        status = exc.response.status_code
        return failed(
            name,
            f"the downstream {shown} refused the upgrade: HTTP {status}",
            "check BACKEND_WS_URL: its path, and the token it carries"
            if status in (401, 403)
            else "check BACKEND_WS_URL's path and that the downstream speaks WebSocket there",
        )
    except (InvalidHandshake, WebSocketException, OSError, TimeoutError, ValueError) as exc:
        return failed(
            name,
            f"the downstream {shown} is unreachable: {exc or type(exc).__name__}",
            "start the downstream service, or fix BACKEND_WS_URL",
        )
    return passed(name, f"the downstream {shown} accepts a WebSocket")


async def _check_realtime(name: str, settings: Settings) -> CheckResult:
    backend = settings.media_backend
    try:
        service, provider = _realtime_service(settings)
    except RealtimeFatal as exc:
        return failed(name, str(exc), f"set {ENDPOINT_SETTINGS[backend]}")
    try:
        socket = await service.connect()
        try:
            saw = await _first_event(socket)
        finally:
            await _quietly_close(socket)
    except RealtimeFatal as exc:
        return failed(name, f"{service.model}: {exc}", _fatal_fix(backend, str(exc)))
    except RealtimeError as exc:
        return failed(
            name,
            f"{service.model}: {exc}",
            f"check {ENDPOINT_SETTINGS[backend]} and the network path to the service",
        )
    finally:
        await service.close()
        if provider is not None:
            await provider.credential.close()
    if saw.startswith("error"):
        return failed(
            name, f"{service.model}: the service answered {saw}", _fatal_fix(backend, saw)
        )
    if saw == "nothing":
        return warned(name, f"{service.model}: the socket opened, but no session.created came")
    return passed(name, f"{service.model}: the handshake succeeded ({saw})")


def _realtime_service(settings: Settings) -> tuple[RealtimeService, EntraTokenProvider | None]:
    """The service a call would open, and the Entra credential doctor made for it (if any)."""
    backend = settings.media_backend
    if backend == "openai":
        return openai_connector(settings), None
    if backend == "azure-openai":
        return azure_connector(settings), None  # the connector owns its credential
    from app.backends.voicelive.connection import VOICELIVE_SCOPE, voicelive_service

    key = settings.azure_voicelive_api_key
    if key is not None and key.get_secret_value():
        return voicelive_service(settings), None
    provider = EntraTokenProvider(default_azure_credential(), VOICELIVE_SCOPE)
    return voicelive_service(settings, token_provider=provider), provider


async def _first_event(socket: RealtimeSocket) -> str:
    # The service refuses a key with HTTP 401 at the upgrade, or (some versions) with an
    # `error` event right after: wait for the first event to tell.
    try:
        async with asyncio.timeout(FIRST_EVENT_TIMEOUT_S):
            event = await socket.recv()
    except TimeoutError:
        return "nothing"
    if event.type == "error":
        error = getattr(event, "error", None)
        code = getattr(error, "code", None) or getattr(error, "type", None)
        return f"error {code}: {getattr(error, 'message', '')}"
    return event.type


async def _quietly_close(socket: RealtimeSocket) -> None:
    # Already closed by the service: the check has its answer.
    with contextlib.suppress(RealtimeError):
        await socket.close()


def _fatal_fix(backend: str, detail: str) -> str:
    if any(marker in detail for marker in ("401", "403", "invalid_api_key", "Entra")):
        return f"the service refused the credentials: check {KEY_SETTINGS[backend]}"
    if "404" in detail:
        return f"no such model, deployment or path: check {ENDPOINT_SETTINGS[backend]}"
    return f"check {ENDPOINT_SETTINGS[backend]} and {KEY_SETTINGS[backend]}"
