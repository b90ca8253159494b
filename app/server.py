"""Running the ASGI app with uvicorn: in the foreground (`acs-bridge serve`) or as a background
task on a free port (tests, the demo)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

from app.services import Services
from app.settings import Settings

log = logging.getLogger(__name__)

DEFAULT_WS_MAX_SIZE = 256 * 1024  # the default of MEDIA_MAX_MESSAGE_BYTES


@dataclass(frozen=True, slots=True)
class RunningServer:
    """A server listening on `host:port`."""

    host: str
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_base_url(self) -> str:
        return f"ws://{self.host}:{self.port}"


def uvicorn_config(
    app: FastAPI,
    host: str,
    port: int,
    *,
    forwarded_allow_ips: str = "*",
    log_config: bool = True,
    ws_max_size: int = DEFAULT_WS_MAX_SIZE,
    ws_compression: bool = False,
) -> uvicorn.Config:
    """Production uvicorn settings: uvloop, httptools, proxy headers (for App Service TLS)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http="httptools",
        ws="websockets-sansio",
        proxy_headers=True,
        forwarded_allow_ips=forwarded_allow_ips,
        lifespan="on",
        access_log=False,
        ws_ping_interval=20.0,
        ws_max_size=ws_max_size,
        ws_per_message_deflate=ws_compression,
        ws_ping_timeout=20.0,
        timeout_graceful_shutdown=10,
        log_config=None if not log_config else uvicorn.config.LOGGING_CONFIG,
    )


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening-ready TCP socket; port 0 picks a free port (read it with getsockname)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit it: asyncio's own loop (not uvloop) leaves Nagle on for a
    # socket it is handed, and every small response then waits ~40 ms for a delayed ACK.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def browser_url(host: str, port: int) -> str:
    """The console's URL as a browser on this machine opens it: a wildcard address (`0.0.0.0`,
    `::`) is no address to browse to, and loopback is a secure context for the microphone."""
    if host in ("0.0.0.0", "", "::"):
        host = "127.0.0.1"
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


class AnnouncedServer(uvicorn.Server):
    """uvicorn's server, saying where to open the console once it is ready (uvicorn says
    nothing for sockets it was handed)."""

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started and sockets:
            host, port = sockets[0].getsockname()[:2]
            where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
            log.info("Listening on %s; open the console at %s", where, browser_url(host, port))


@contextlib.asynccontextmanager
async def serve_in_background(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    sock: socket.socket | None = None,
    settings: Settings | None = None,
) -> AsyncIterator[RunningServer]:
    """Serve `app` on the running loop until the block exits.

    Pass `sock` (from `bind_socket`) when the app's settings must know its port beforehand, and
    the app's `settings` for its media socket limits (their defaults without them).
    """
    sock = sock if sock is not None else bind_socket(host, port)
    bound_host, bound_port = sock.getsockname()[:2]
    config = uvicorn_config(
        app,
        bound_host,
        bound_port,
        log_config=False,
        ws_max_size=settings.media_max_message_bytes if settings else DEFAULT_WS_MAX_SIZE,
        ws_compression=settings.media_ws_compression if settings else False,
    )
    config.loop = "none"
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()  # re-raise the startup failure
                raise RuntimeError("server stopped during startup")
            await asyncio.sleep(0.005)
        yield RunningServer(bound_host, bound_port)
    finally:
        # What a stop signal does first, without the drain: console streams end (uvicorn
        # would wait for them), and media sessions end through the app's own path (uvicorn
        # closing their sockets would look like a dropped stream, parked for a resume).
        services = getattr(app.state, "services", None)
        if isinstance(services, Services):  # an app built by create_app
            services.events.close()
            await services.media.close()
        server.should_exit = True
        try:
            await asyncio.wait_for(task, timeout=15)
        except TimeoutError:
            server.force_exit = True
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sock.close()
