"""Fixtures for the emulator tests: an HTTP receiver on 127.0.0.1:0 (callbacks, webhooks), the
real Call Automation SDK client pointed at the emulator, and signed raw requests."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from azure.communication.callautomation import (
    AudioFormat,
    CallConnectionProperties,
    MediaStreamingAudioChannelType,
    MediaStreamingContentType,
    MediaStreamingOptions,
    StreamingTransportType,
)
from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential

from app.emulator import AcsEmulator, EmulatedCall, sign_request

TRANSPORT_URL = "wss://bridge.example.test/media?token=abc"

Responder = Callable[[web.Request, bytes], Awaitable[web.Response]]


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


class HttpSink:
    """Records every request; answers `status`, or whatever `responder` returns."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.status = 200
        self.responder: Responder | None = None
        self.base_url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def url(self, path: str = "/callbacks") -> str:
        return self.base_url + path

    def posts(self, path: str = "/callbacks") -> list[Received]:
        """The POSTs received at `path`, in arrival order."""
        return [r for r in self.received if r.method == "POST" and r.path == path]

    def events(self, path: str = "/callbacks") -> list[dict[str, Any]]:
        """Every event of every array POSTed to `path`, in arrival order."""
        return [e for r in self.posts(path) if isinstance(r.body, list) for e in r.body]

    def event_types(self, path: str = "/callbacks") -> list[str]:
        prefix = "Microsoft.Communication."
        return [str(e.get("type", "")).removeprefix(prefix) for e in self.events(path)]

    async def _handle(self, request: web.Request) -> web.Response:
        raw = await request.read()
        body = json.loads(raw) if raw else None
        self.received.append(Received(request.method, request.path, dict(request.headers), body))
        if self.responder is not None:
            return await self.responder(request, raw)
        return web.Response(status=self.status)


@pytest.fixture
async def sink() -> AsyncIterator[HttpSink]:
    receiver = HttpSink()
    await receiver.start()
    yield receiver
    await receiver.stop()


@pytest.fixture
async def client(emulator: AcsEmulator) -> AsyncIterator[CallAutomationClient]:
    """The real SDK over plain http; retries kept fast."""
    credential = AzureKeyCredential(emulator.access_key)
    async with CallAutomationClient(
        emulator.endpoint, credential, retry_backoff_factor=0.01, retry_backoff_max=0.05
    ) as sdk:
        yield sdk


def media_options(*, start: bool = True) -> MediaStreamingOptions:
    return MediaStreamingOptions(
        transport_url=TRANSPORT_URL,
        transport_type=StreamingTransportType.WEBSOCKET,
        content_type=MediaStreamingContentType.AUDIO,
        audio_channel_type=MediaStreamingAudioChannelType.MIXED,
        start_media_streaming=start,
        enable_bidirectional=True,
        audio_format=AudioFormat.PCM16_K_MONO,
    )


async def answer_incoming(
    emulator: AcsEmulator,
    client: CallAutomationClient,
    sink: HttpSink,
    *,
    media: MediaStreamingOptions | None = None,
    operation_context: str | None = None,
) -> tuple[CallConnectionProperties, EmulatedCall]:
    """Offer a call to the sink's webhook and answer it with the SDK."""
    offer = await emulator.place_incoming_call(sink.url("/incoming"))
    props = await client.answer_call(
        offer.incoming_call_context,
        sink.url(),
        media_streaming=media,
        operation_context=operation_context,
    )
    assert props.call_connection_id is not None
    return props, emulator.calls[props.call_connection_id]


async def signed_request(
    emulator: AcsEmulator,
    method: str,
    path_and_query: str,
    body: bytes = b"",
    *,
    sent_body: bytes | None = None,
    extra_headers: dict[str, str] | None = None,
    date: str | None = None,
) -> tuple[int, Any]:
    """Send a request signed like the SDK does; `sent_body` replaces the body after signing."""
    headers = sign_request(
        emulator.access_key, method, path_and_query, emulator.signed_host, body, date=date
    )
    headers["Content-Type"] = "application/json"
    headers.update(extra_headers or {})
    async with (
        aiohttp.ClientSession() as session,
        session.request(
            method,
            emulator.endpoint + path_and_query,
            data=body if sent_body is None else sent_body,
            headers=headers,
        ) as response,
    ):
        raw = await response.read()
        return response.status, json.loads(raw) if raw else None


@pytest.fixture
async def emulator() -> AsyncIterator[AcsEmulator]:
    """The emulator alone: these tests drive REST and callbacks, no media peer is needed."""
    async with AcsEmulator() as emu:
        yield emu
