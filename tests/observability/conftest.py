"""An app with only the observability routes (console, events, metrics) on the real services,
and the headless Chromium the console's browser tests drive."""

from __future__ import annotations

import os
import wave
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
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


def fake_microphone_args(wav: Path) -> list[str]:
    """Chromium flags for a microphone that plays `wav` (looped), granted without a prompt."""
    return [
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={wav}",
        "--autoplay-policy=no-user-gesture-required",
    ]


def write_tone_wav(path: Path, freq: float, *, rate: int = 48000, seconds: float = 2.0) -> Path:
    """A mono 16-bit WAV of a tone at `freq`, in bursts like syllables (a steady tone is what
    noise suppression removes)."""
    t = np.arange(int(rate * seconds)) / rate
    bursts = (np.floor(t / 0.25) % 2 == 0).astype(np.float64)  # 250 ms on, 250 ms off
    samples = np.sin(2 * np.pi * freq * t) * 0.5 * bursts
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((samples * 32767).astype("<i2").tobytes())
    return path


MICROPHONE_HZ = 1000.0


@pytest.fixture
def fake_microphone(tmp_path: Path) -> Path:
    """The fake microphone's recording: 1 kHz bursts, 48 kHz mono 16-bit."""
    return write_tone_wav(tmp_path / "microphone.wav", MICROPHONE_HZ)


@pytest.fixture
async def phone_browser(fake_microphone: Path) -> AsyncIterator[Browser]:
    """Headless Chromium whose microphone plays `fake_microphone`, closed after the test."""
    executable = chromium_path()
    args = [*CHROMIUM_ARGS, *fake_microphone_args(fake_microphone)]
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=args)
        try:
            yield browser
        finally:
            await browser.close()
