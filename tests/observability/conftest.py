"""An app with only the observability routes (console, events, metrics) on the real services."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

from fastapi import APIRouter, FastAPI

from app.api import console, errors, metrics
from app.observability.http_metrics import HttpMetricsMiddleware
from app.security import dependencies as security_errors
from app.services import Services, build_services
from app.settings import Settings


def observed_app(settings: Settings | None = None, *routers: APIRouter) -> FastAPI:
    """The console, /api/events and /metrics, plus `routers`, as `create_app` wires them."""
    settings = settings if settings is not None else Settings(_env_file=None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await build_services(settings, stack)
            yield

    app = FastAPI(lifespan=lifespan)
    app.state.settings = settings
    errors.install(app)
    security_errors.install(app)
    app.add_middleware(HttpMetricsMiddleware)
    app.include_router(console.router)
    app.include_router(metrics.router)
    for router in routers:
        app.include_router(router)
    return app


def services_of(app: FastAPI) -> Services:
    services: Services = app.state.services
    return services


def settings_with(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)
