"""Shared fixtures: real servers on 127.0.0.1 ephemeral ports, no mocks."""

from __future__ import annotations

import asyncio
import json
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.emulator import AcsEmulator
from app.emulator.media_client import MediaClient, MediaStream, StreamScript
from app.main import create_app
from app.security.signing import TokenSigner
from app.server import bind_socket, serve_in_background
from app.services import Services
from app.settings import DEFAULT_ACS_JWT_ISSUER, Settings

CORPUS = Path(__file__).parent / "corpus"
TEST_RESOURCE_ID = "11111111-2222-3333-4444-555555555555"
EVENTGRID_SECRET = "test-eventgrid-secret"
CONTROL_API_KEY = "test-control-api-key"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The `slow` tests (browsers, the production install, the Pipecat cascade) each want a core
    to themselves: under `./scripts/test`'s pytest-xdist (`--dist loadgroup`) they run one after
    another on one worker, while the other workers share out the rest."""
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(pytest.mark.xdist_group("slow"))


def load_corpus(relative: str) -> Any:
    """A payload from tests/corpus (copied from Microsoft's examples in shared/corpus)."""
    return json.loads((CORPUS / relative).read_text(encoding="utf-8"))


@pytest.fixture
def corpus() -> Path:
    return CORPUS


@pytest.fixture(scope="session")
def signer() -> TokenSigner:
    """The emulator's ACS token key pair (RSA key generation is slow: one per test run)."""
    return TokenSigner(audience=TEST_RESOURCE_ID)


@pytest.fixture
async def emulator(signer: TokenSigner) -> AsyncIterator[AcsEmulator]:
    """A started ACS emulator on 127.0.0.1:0 (HMAC-checked REST, signed callbacks, Event Grid,
    its JWKS), whose media client plays the caller on every call whose streaming starts."""
    emu = AcsEmulator(media_handler=MediaClient(token_source=signer), token_source=signer)
    emu.resource_id = signer.audience
    async with emu:
        yield emu


def media_client(emulator: AcsEmulator) -> MediaClient:
    """The emulator's media client (the far end of each call's media stream)."""
    assert isinstance(emulator.media_handler, MediaClient)
    return emulator.media_handler


@dataclass
class LiveApp:
    """The app served on a real socket, with a client for its HTTP API."""

    app: FastAPI
    settings: Settings
    base_url: str
    client: httpx.AsyncClient  # authenticated as ACS, Event Grid and an operator at once

    @property
    def services(self) -> Services:
        services: Services = self.app.state.services
        return services

    @property
    def webhook_url(self) -> str:
        """The Event Grid subscription URL, with its secret."""
        code = self.settings.eventgrid_secret
        query = f"?code={code.get_secret_value()}" if code else ""
        return f"{self.base_url}/api/incomingCall{query}"


AppFactory = Callable[..., AbstractAsyncContextManager[LiveApp]]


async def answered_call(live: LiveApp, emulator: AcsEmulator) -> str:
    """Ring `live` through Event Grid from the emulator; the id of the call it answered."""
    delivery = await emulator.place_incoming_call(live.webhook_url, caller="+14255550123")
    assert delivery.deliveries[0].status == 200, delivery.deliveries[0].body
    call = await emulator.call_for_context(delivery.incoming_call_context)
    assert call is not None
    return call.call_connection_id


async def call_state(live: LiveApp, call_id: str, **expected: str) -> dict[str, object]:
    """Poll the control API until the call's fields equal `expected` (callbacks are async)."""
    body: dict[str, object] = {}
    for _ in range(200):
        response = await live.client.get(f"/api/calls/{call_id}")
        if response.status_code == 200:
            body = response.json()
            if all(body.get(k) == v for k, v in expected.items()):
                return body
        await asyncio.sleep(0.02)
    raise AssertionError(f"call never reached {expected}: {body}")


def app_settings(port: int, emulator: AcsEmulator | None, **overrides: Any) -> Settings:
    """Settings for an app on 127.0.0.1:`port` whose ACS is `emulator`, every check on."""
    values: dict[str, Any] = {
        "public_base_url": f"http://127.0.0.1:{port}",
        "acs_operation_timeout_s": 5.0,
        "eventgrid_secret": EVENTGRID_SECRET,
        "control_api_key": CONTROL_API_KEY,
    }
    if emulator is not None:
        values["acs_connection_string"] = emulator.connection_string
        values["acs_resource_id"] = emulator.resource_id
        values["acs_jwks_url"] = f"{emulator.endpoint}/calling/keys"
        values["acs_jwt_issuer"] = DEFAULT_ACS_JWT_ISSUER
    values.update(overrides)
    return Settings(_env_file=None, **values)


def operator_headers(signer: TokenSigner) -> dict[str, str]:
    """Headers that pass every check: the control API key and a fresh ACS token."""
    return {"X-API-Key": CONTROL_API_KEY, "Authorization": f"Bearer {signer.mint()}"}


@pytest.fixture
def start_app(emulator: AcsEmulator, signer: TokenSigner) -> AppFactory:
    """Start the app on a free port against the emulator; keyword args override settings."""

    @asynccontextmanager
    async def start(**overrides: Any) -> AsyncIterator[LiveApp]:
        sock = bind_socket()  # Nagle off for every connection, as uvloop has it
        settings = app_settings(sock.getsockname()[1], emulator, **overrides)
        app = create_app(settings)
        async with (
            serve_in_background(app, sock=sock, settings=settings) as server,
            httpx.AsyncClient(
                base_url=server.base_url,
                timeout=10,
                headers=operator_headers(signer),
                params={"code": EVENTGRID_SECRET},
            ) as client,
        ):
            yield LiveApp(app, settings, server.base_url, client)

    return start


@pytest.fixture
async def live_app(start_app: AppFactory) -> AsyncIterator[LiveApp]:
    """The app with default test settings, against the `emulator` fixture."""
    async with start_app() as live:
        yield live


StreamFactory = Callable[..., AbstractAsyncContextManager[MediaStream]]


def ws_url(live: LiveApp) -> str:
    return live.base_url.replace("http://", "ws://") + "/ws"


@pytest.fixture
def open_stream(signer: TokenSigner) -> StreamFactory:
    """Open a media stream (ACS's side) to a live app."""

    @asynccontextmanager
    async def open_(
        live: LiveApp, *, sample_rate: int = 16000, script: StreamScript | None = None, **kw: Any
    ) -> AsyncIterator[MediaStream]:
        kw.setdefault("token_source", signer)
        stream = MediaStream(
            ws_url(live),
            kw.pop("call_connection_id", f"call-{uuid.uuid4()}"),
            kw.pop("correlation_id", f"corr-{uuid.uuid4()}"),
            sample_rate=sample_rate,
            script=script or StreamScript(),
            **kw,
        )
        await stream.open()
        try:
            yield stream
        finally:
            await stream.close()

    return open_


REDIS_SERVER_MISSING = (
    "the Redis tests need redis-server (the suite starts its own) and it is not installed; "
    "install it: sudo apt-get install redis-server (Debian/Ubuntu), or: brew install redis (macOS)"
)


def redis_server_command(port: int, directory: Path) -> list[str]:
    """`redis-server` on 127.0.0.1:`port`, its files in `directory`, never saving by itself."""
    executable = shutil.which("redis-server")
    if executable is None:
        pytest.fail(REDIS_SERVER_MISSING, pytrace=False)
    return [
        executable,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(directory),
    ]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _answers(url: str) -> bool:
    from redis import Redis
    from redis.exceptions import RedisError

    client = Redis.from_url(url, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except (RedisError, OSError):
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The test Redis: a private `redis-server` of this test process (each xdist worker has its
    own), on a free 127.0.0.1 port, in a temporary directory, stopped at the end. Use it with
    `redis_prefix`."""
    with tempfile.TemporaryDirectory(prefix="acs-bridge-redis-") as directory:
        log_path = Path(directory) / "redis.log"
        for _ in range(5):  # another process may take the free port before redis-server binds it
            port = _free_port()
            url = f"redis://127.0.0.1:{port}/0"
            with log_path.open("ab") as log:
                process = subprocess.Popen(  # noqa: S603 (a fixed command line)
                    redis_server_command(port, Path(directory)), stdout=log, stderr=log
                )
            deadline = time.monotonic() + 10
            while process.poll() is None and time.monotonic() < deadline:
                if _answers(url):
                    break
                time.sleep(0.02)
            else:
                process.kill()
                process.wait()
                continue
            try:
                yield url
            finally:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            return
        log_tail = log_path.read_text(errors="replace")[-2000:]
        pytest.fail(f"the test redis-server did not start:\n{log_tail}", pytrace=False)


@pytest.fixture
async def redis_prefix(redis_url: str) -> AsyncIterator[str]:
    """A key prefix of this test's own on the test Redis; its keys are deleted afterwards.

    Apps sharing state in one test share the prefix:
    `start_app(redis_url=redis_url, redis_key_prefix=redis_prefix, instance_id="a")`.
    """
    from redis.asyncio import Redis
    from redis.exceptions import ConnectionError as RedisConnectionError

    prefix = f"test:{uuid.uuid4().hex[:12]}:"
    client = Redis.from_url(redis_url)
    try:
        try:
            await client.ping()
        except RedisConnectionError as exc:
            raise RuntimeError(f"the test Redis at {redis_url} stopped answering") from exc
        yield prefix
        keys = [key async for key in client.scan_iter(match=f"{prefix}*", count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
