"""The app factory and its lifespan; `app.main:app` is what uvicorn serves."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI

from app.agents.loading import load_agents
from app.agents.reload_signal import reload_on_sighup
from app.api import agents as agent_routes
from app.api import (
    callbacks,
    calls,
    console,
    doctor,
    errors,
    eventgrid,
    health,
    media,
    metrics,
    softphone,
)
from app.api import emulator as emulator_routes
from app.media.asgi_channels import RawChannelsMiddleware
from app.observability.http_metrics import HttpMetricsMiddleware
from app.observability.logging import configure_logging
from app.observability.telemetry import configure_telemetry
from app.security import dependencies as security_errors
from app.security.body_limit import BodyLimitMiddleware
from app.security.startup import check_secure_configuration
from app.services import build_services
from app.settings import ConfigurationError, Settings, load_settings
from app.shutdown import ShutdownSignal

if TYPE_CHECKING:  # the emulator is imported only when it runs
    from app.emulator import AcsEmulator

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, emulator: AcsEmulator | None = None) -> FastAPI:
    """Build the ASGI app; settings default to the environment and `.env`.

    `emulator` is an ACS emulator the caller started as the service's ACS (the demo). With no
    ACS settings and no `emulator`, the lifespan starts one on 127.0.0.1 (first runs).
    """
    settings = settings if settings is not None else Settings()
    # Refuse to build an internet-facing app whose ACS traffic nobody verifies.
    check_secure_configuration(settings)
    # A bad AGENTS_FILE or AGENT_TOOLS_FILE stops the app here, in one line, not at the first
    # call. The composition root is where the process environment is handed over (`${VAR}` in
    # the tools files' headers).
    agents = load_agents(settings, os.environ)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            live_settings, live_emulator = settings, emulator
            if emulator is None and not settings.acs_configured:
                # Imported only here: the emulator (aiohttp, numpy, soxr) is no part of a
                # service with a real ACS resource.
                from app.embedded_acs import embedded_acs

                acs = await stack.enter_async_context(
                    embedded_acs(settings, public_base_url=f"http://127.0.0.1:{settings.port}")
                )
                live_settings, live_emulator = acs.settings, acs.emulator
                log.warning(
                    "No ACS configured: using the embedded ACS emulator at %s (test calls only; "
                    "place one from the console at %s or POST /api/emulator/calls)",
                    acs.emulator.endpoint,
                    acs.settings.public_url("/"),
                )
            stopping = await stack.enter_async_context(ShutdownSignal())
            services = await build_services(
                live_settings,
                stack,
                emulator=live_emulator,
                agents=agents if live_settings is settings else None,
                environ=os.environ,
                stopping=stopping,
            )
            # Console streams never end by themselves; the server waits for them on shutdown.
            stopping.on_signal(services.events.close)
            stopping.drain_with(lambda: services.media.drain(settings.shutdown_drain_s))
            webhook = services.call_end_webhook
            if webhook is not None:
                # After the calls drained: the records of the calls the drain ended go out too.
                stopping.drain_with(lambda: webhook.drain(settings.shutdown_drain_s))
            await stack.enter_async_context(reload_on_sighup(services.agents))
            app.state.services = services
            yield

    app = FastAPI(
        title="ACS media bridge",
        version="0.1.0",
        description="Bridges Azure Communication Services calls to real-time audio backends.",
        lifespan=lifespan,
    )
    errors.install(app)
    security_errors.install(app)
    app.add_middleware(
        BodyLimitMiddleware,
        max_body_bytes=settings.max_request_body_bytes,
        body_timeout_s=settings.request_body_timeout_s,
    )
    # Counts what the body limit refuses too.
    app.add_middleware(HttpMetricsMiddleware)
    # Outermost: the media socket's frames bypass the framework's per-message wrappers.
    app.add_middleware(RawChannelsMiddleware)
    app.include_router(health.router)
    app.include_router(eventgrid.router)
    app.include_router(callbacks.router)
    app.include_router(calls.router)
    app.include_router(agent_routes.router)
    app.include_router(media.router)
    app.include_router(emulator_routes.router)
    app.include_router(metrics.router)
    app.include_router(console.router)
    app.include_router(softphone.router)
    app.include_router(doctor.router)
    return app


def production_app(settings: Settings | None = None) -> FastAPI:
    """The app as a server runs it: settings from the environment, logging, telemetry.

    `acs-bridge serve` and `uvicorn app.main:app` both start from here. Settings that cannot
    work raise ConfigurationError (one line).
    """
    settings = settings if settings is not None else load_settings()
    configure_logging(settings)
    app = create_app(settings)
    configure_telemetry(settings, app)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, gunicorn and App Service, built on first access rather than
    # at import time.
    if name == "app":
        try:
            return production_app()
        except ConfigurationError as exc:
            # One line and a non-zero exit, not a traceback from inside the server's loader.
            print(f"acs-bridge: cannot start: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    raise AttributeError(name)
