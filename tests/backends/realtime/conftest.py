"""Fixtures for the Realtime backend: the fake service, a recording MediaOutput, a backend.

The conversation is one implementation for every Realtime service. A module whose tests hold
for all of them runs them against each with `pytestmark = SERVICES`: the `service` fixture is
then "openai" (the GA protocol through the openai SDK) and "voice-live" (Voice Live's dialect
through the azure-ai-voicelive SDK), and `fake`, `open_backend` and `backend_settings` follow.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Literal

import pytest

from app.agent.tools import ToolConfig
from app.backends.base import (
    ActionAccepted,
    ActionFailed,
    BackendEvent,
    CallContext,
    StreamFormat,
)
from app.backends.realtime import RealtimeBackend, RealtimeConfig, ReconnectPolicy
from app.backends.realtime.connection import openai_connector
from app.backends.voicelive import conversation_config
from app.backends.voicelive.connection import voicelive_service
from app.settings import Settings
from tests.backends.realtime.fake_server import BYTES_PER_MS, FakeRealtime, fake_realtime

FAST_RECONNECT = ReconnectPolicy(initial_s=0.01, max_s=0.05, attempts=4)
Service = Literal["openai", "voice-live"]
SERVICES = pytest.mark.parametrize("service", ["openai", "voice-live"], indirect=True)


class FakeActions:
    """The backend's call actions, recorded; each one is accepted unless named in `refuse`
    (action -> ActionFailed to raise)."""

    def __init__(self, refuse: dict[str, ActionFailed] | None = None) -> None:
        self.calls: list[tuple[str, str]] = []
        self.refuse = refuse or {}
        self._changed = asyncio.Event()

    async def hang_up(self) -> ActionAccepted:
        return self._record("hang_up", "")

    async def transfer(self, target: str) -> ActionAccepted:
        return self._record("transfer", target)

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        return self._record("send_dtmf", tones)

    async def wait_for(self, action: str, within_s: float = 5.0) -> None:
        async with asyncio.timeout(within_s):
            while not any(name == action for name, _ in self.calls):
                self._changed.clear()
                await self._changed.wait()

    def _record(
        self, action: Literal["hang_up", "transfer", "send_dtmf"], detail: str
    ) -> ActionAccepted:
        self.calls.append((action, detail))
        self._changed.set()
        refusal = self.refuse.get(action)
        if refusal is not None:
            raise refusal
        return ActionAccepted(action, f"test:{action}")


class FakeOutput:
    """A MediaOutput that records what the backend does; `play` completes at once unless
    `gate` is cleared (a full outbound buffer). By default the caller has heard everything
    played; `heard` overrides that estimate."""

    def __init__(self, heard: Callable[[str], float] | None = None) -> None:
        # ("play", item id), ("end", item id) or ("stop", None)
        self.log: list[tuple[str, str | None]] = []
        self.played: defaultdict[str | None, bytearray] = defaultdict(bytearray)
        self.reports: list[BackendEvent] = []
        self.ended: list[str] = []
        self.heard = heard
        self.gate: asyncio.Event | None = None
        self._changed = asyncio.Event()

    async def play(self, pcm: bytes, *, playback_id: str | None = None) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.log.append(("play", playback_id))
        self.played[playback_id] += pcm
        self._changed.set()

    async def end_of_playback(self, playback_id: str | None = None) -> None:
        self.log.append(("end", playback_id))
        self._changed.set()

    def ended_playbacks(self) -> list[str | None]:
        return [playback_id for kind, playback_id in self.log if kind == "end"]

    def stop_audio(self) -> None:
        self.log.append(("stop", None))
        self._changed.set()

    def heard_ms(self, playback_id: str) -> float:
        if self.heard is not None:
            return self.heard(playback_id)
        return len(self.played.get(playback_id, b"")) / BYTES_PER_MS

    def report(self, event: BackendEvent) -> None:
        self.reports.append(event)
        self._changed.set()

    def end(self, reason: str) -> None:
        self.ended.append(reason)
        self._changed.set()

    def reported(self, kind: str) -> list[dict[str, Any]]:
        return [dict(event.data) for event in self.reports if event.kind == kind]

    async def wait_for(
        self, predicate: Callable[[FakeOutput], bool], within_s: float = 5.0
    ) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()


def call_context(
    sample_rate: int = 24000, caller: str | None = None, callee: str | None = None
) -> CallContext:
    return CallContext(
        call_connection_id="call-realtime",
        correlation_id="corr-realtime",
        stream=StreamFormat(sample_rate=sample_rate),
        caller=caller,
        callee=callee,
    )


def backend_settings(fake: FakeRealtime, **overrides: Any) -> dict[str, Any]:
    """The settings of the backend for `fake`'s service (its dialect), with `overrides`."""
    if fake.dialect == "voice-live":
        values: dict[str, Any] = {
            "media_backend": "voice-live",
            "azure_voicelive_endpoint": fake.voicelive_endpoint,
            "azure_voicelive_api_key": "vl-test-key",
        }
    else:
        values = {
            "media_backend": "openai",
            "openai_api_key": "sk-test-key",
            "openai_base_url": fake.openai_base_url,
        }
    values.update(overrides)
    return values


def realtime_settings(fake: FakeRealtime, **overrides: Any) -> Settings:
    return Settings(_env_file=None, **backend_settings(fake, **overrides))


def realtime_backend(settings: Settings, **options: Any) -> RealtimeBackend:
    """The backend `settings` choose (openai or voice-live), as its factory builds it, with the
    test's reconnect and renewal `options`."""
    if settings.media_backend == "voice-live":
        service = voicelive_service(settings)
        return RealtimeBackend(service, conversation_config(settings), name="voice-live", **options)
    return RealtimeBackend(
        openai_connector(settings), RealtimeConfig.from_settings(settings), **options
    )


OpenBackend = Callable[..., AbstractAsyncContextManager[tuple[RealtimeBackend, FakeOutput]]]


@pytest.fixture
def service(request: pytest.FixtureRequest) -> Service:
    """The Realtime service under test: "openai" unless the module runs them all (SERVICES)."""
    name: Service = getattr(request, "param", "openai")
    return name


@pytest.fixture
async def fake(service: Service) -> AsyncIterator[FakeRealtime]:
    async with fake_realtime("voice-live" if service == "voice-live" else "ga") as running:
        yield running


@pytest.fixture
def open_backend(fake: FakeRealtime) -> OpenBackend:
    """Open the service's RealtimeBackend against `fake` (settings as keyword args, no tools
    unless `tools`, a 24 kHz call unless `call`); closed on exit."""

    @asynccontextmanager
    async def open_(
        *,
        output: FakeOutput | None = None,
        reconnect: ReconnectPolicy = FAST_RECONNECT,
        renew_after_s: float = 3600.0,
        tools: ToolConfig | None = None,
        actions: FakeActions | None = None,
        call: CallContext | None = None,
        **overrides: Any,
    ) -> AsyncIterator[tuple[RealtimeBackend, FakeOutput]]:
        settings = realtime_settings(fake, **overrides)
        backend = realtime_backend(
            settings,
            reconnect=reconnect,
            renew_after_s=renew_after_s,
            renew_deadline_s=renew_after_s + 1.0,
            tools=tools,
        )
        output = output or FakeOutput()
        await backend.open(call or call_context(), output, actions or FakeActions())
        try:
            yield backend, output
        finally:
            await backend.close()

    return open_
