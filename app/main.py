"""The app factory and its lifespan; `app.main:app` is what uvicorn serves."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from fastapi import FastAPI

from app.api import callbacks, calls, console, errors, eventgrid, health, media, metrics
from app.api import emulator as emulator_routes
from app.emulator import AcsEmulator
from app.media.asgi_channels import RawChannelsMiddleware
from app.observability.http_metrics import HttpMetricsMiddleware
from app.security import dependencies as security_errors
from app.security.body_limit import BodyLimitMiddleware
from app.security.startup import check_secure_configuration
from app.services import build_services
from app.settings import Settings


def create_app(settings: Settings | None = None, *, emulator: AcsEmulator | None = None) -> FastAPI:
    """Build the ASGI app; settings default to the environment and `.env`.

    `emulator` is the embedded ACS emulator when it is the service's ACS (first runs, the demo).
    """
    settings = settings if settings is not None else Settings()
    # Refuse to build an internet-facing app whose ACS traffic nobody verifies.
    check_secure_configuration(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await build_services(settings, stack)
            yield

    app = FastAPI(
        title="ACS media bridge",
        version="0.1.0",
        description="Bridges Azure Communication Services calls to real-time audio backends.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.emulator = emulator
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
    app.include_router(media.router)
    app.include_router(emulator_routes.router)
    app.include_router(metrics.router)
    app.include_router(console.router)
    return app


def __getattr__(name: str) -> FastAPI:
    # `app.main:app` for uvicorn, built on first access rather than at import time.
    if name == "app":
        return create_app()
    raise AttributeError(name)
