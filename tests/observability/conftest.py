"""An app with only the observability routes (console, events, metrics) on the real services,
and the headless Chromium the console's browser tests drive."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from playwright.async_api import Browser, async_playwright

from app.api import console, errors, metrics
from app.emulator import AcsEmulator
from app.observability.http_metrics import HttpMetricsMiddleware
from app.security import dependencies as security_errors
from app.services import Services, build_services
from app.settings import Settings


def observed_app(
    settings: Settings | None = None, *routers: APIRouter, emulator: AcsEmulator | None = None
) -> FastAPI:
    """The console, /api/events and /metrics, plus `routers`, as `create_app` wires them;
    `emulator` is the app's ACS emulator (the console then offers test calls)."""
    settings = settings if settings is not None else Settings(_env_file=None)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app.state.services = await build_services(settings, stack, emulator=emulator)
            yield

    app = FastAPI(lifespan=lifespan)
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


CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium_path() -> str:
    """`CHROMIUM_PATH`, which must name an executable: a missing browser fails, never skips."""
    path = os.environ.get("CHROMIUM_PATH", "")
    if not path:
        pytest.fail(
            "CHROMIUM_PATH is not set: run the tests with ./scripts/test, which finds a browser, "
            "or set CHROMIUM_PATH to a Chromium or Chrome executable",
            pytrace=False,
        )
    if not (os.path.isfile(path) and os.access(path, os.X_OK)):
        pytest.fail(f"CHROMIUM_PATH={path} is not an executable file", pytrace=False)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """A headless Chromium from CHROMIUM_PATH, closed after the test."""
    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            await browser.close()
