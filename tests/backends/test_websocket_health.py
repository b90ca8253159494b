"""The websocket backend's link: its health reported on the call ("connected", "reconnect",
"error"), promptly even when the downstream is down at the call's start, and the
downstream's token on every connect, never logged and never carried elsewhere."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import pytest
from pydantic import SecretStr

from app.backends import websocket
from app.backends.base import CallContext, StreamFormat
from app.backends.websocket import WebSocketBackend
from app.emulator.media_client import StreamScript, tone
from tests.backends.realtime.conftest import FakeActions, FakeOutput
from tests.backends.websocket_downstream import Downstream, serving
from tests.conftest import AppFactory
from tests.media.conftest import StreamFactory

CALL = CallContext("ws-health", None, StreamFormat(16000))


@asynccontextmanager
async def opened(backend: WebSocketBackend) -> AsyncIterator[FakeOutput]:
    """`backend` opened for CALL (open returns at once, whatever the downstream does)."""
    output = FakeOutput()
    async with asyncio.timeout(1):
        await backend.open(CALL, output, FakeActions())
    try:
        yield output
    finally:
        await backend.close()


@contextmanager
def closed_port() -> Iterator[int]:
    """A 127.0.0.1 port nothing listens on (connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        yield probe.getsockname()[1]


@asynccontextmanager
async def silent_server(port: int = 0) -> AsyncIterator[int]:
    """A TCP server that accepts connections and never says a word; yields its port."""
    held: list[asyncio.StreamWriter] = []

    async def accept(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(accept, "127.0.0.1", port)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        for writer in held:
            writer.close()
        server.close()
        await server.wait_closed()


def kinds(output: FakeOutput) -> list[str]:
    return [event.kind for event in output.reports]


# --- health events ----------------------------------------------------------------------------


async def test_each_connect_reports_connected_and_a_drop_reports_reconnect(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.01)
    async with serving() as downstream, opened(WebSocketBackend(downstream.url)) as output:
        await output.wait_for(lambda o: kinds(o) == ["connected"])
        await downstream.connections[0].close(1001, "going away")
        await output.wait_for(lambda o: kinds(o) == ["connected", "reconnect", "connected"])
    assert output.reported("connected") == [{"backend": "websocket"}] * 2
    assert output.reported("reconnect") == [
        {
            "backend": "websocket",
            "attempt": 1,
            "reason": "downstream closed the connection with 1001 (going away)",
        }
    ]
    assert len(downstream.starts) == 2


async def test_a_refused_first_connect_is_reported_at_once_not_after_a_backoff(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 60.0)  # the next attempt is far off
    with closed_port() as port:
        backend = WebSocketBackend(f"ws://127.0.0.1:{port}/agent")
        async with opened(backend) as output:
            await output.wait_for(lambda o: bool(o.reports))
    assert output.reports[0].kind == "reconnect"
    assert output.reported("reconnect") == [
        {"backend": "websocket", "attempt": 1, "reason": f"connection refused: 127.0.0.1:{port}"}
    ]
    assert output.ended == []


async def test_a_silent_downstream_is_reported_after_the_first_attempts_short_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 60.0)
    async with silent_server() as port:
        backend = WebSocketBackend(f"ws://127.0.0.1:{port}/agent")
        async with opened(backend) as output:
            await output.wait_for(lambda o: bool(o.reports), within_s=10)
    assert websocket.FIRST_CONNECT_TIMEOUT_S <= 2  # the session learns of it within 2 s
    assert output.reported("reconnect") == [
        {
            "backend": "websocket",
            "attempt": 1,
            "reason": f"no answer within {websocket.FIRST_CONNECT_TIMEOUT_S:g} s: 127.0.0.1:{port}",
        }
    ]


async def test_each_further_attempt_in_a_row_waits_twice_as_long_for_an_answer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.01)
    monkeypatch.setattr(websocket, "FIRST_CONNECT_TIMEOUT_S", 0.05)
    monkeypatch.setattr(websocket, "CONNECT_TIMEOUT_S", 0.2)
    async with silent_server() as port:
        backend = WebSocketBackend(f"ws://127.0.0.1:{port}/agent")
        async with opened(backend) as output:
            await output.wait_for(lambda o: len(o.reports) == 4)
    assert [r["reason"] for r in output.reported("reconnect")] == [
        f"no answer within {seconds} s: 127.0.0.1:{port}"
        for seconds in ("0.05", "0.1", "0.2", "0.2")
    ]


async def test_after_a_drop_the_first_attempt_gets_the_short_timeout_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.01)
    monkeypatch.setattr(websocket, "FIRST_CONNECT_TIMEOUT_S", 0.05)
    async with serving() as downstream:
        assert downstream.server is not None
        port = next(iter(downstream.server.sockets)).getsockname()[1]
        backend = WebSocketBackend(downstream.url)
        async with opened(backend) as output:
            await output.wait_for(lambda o: bool(o.reported("connected")))
            listener = downstream.server.server
            listener.close()  # stop listening; the open connection stays
            await listener.wait_closed()
            async with silent_server(port):  # the port's next listener never answers
                await downstream.connections[0].close()
                await output.wait_for(lambda o: "no answer" in str(o.reports[-1].data))
    assert output.reported("reconnect") == [
        {
            "backend": "websocket",
            "attempt": 1,
            "reason": "downstream closed the connection with 1000",
        },
        {
            "backend": "websocket",
            "attempt": 2,
            "reason": f"no answer within 0.05 s: 127.0.0.1:{port}",
        },
    ]


async def test_refused_handshakes_count_attempts_until_the_downstream_accepts(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 0.01)
    async with (
        serving(Downstream(refuse_status=401)) as downstream,
        opened(WebSocketBackend(downstream.url)) as output,
    ):
        await output.wait_for(lambda o: len(o.reported("reconnect")) == 3)
        downstream.refuse_status = None
        await output.wait_for(lambda o: bool(o.reported("connected")))
    refusals = output.reported("reconnect")[:3]
    assert [r["attempt"] for r in refusals] == [1, 2, 3]
    assert {r["reason"] for r in refusals} == {"handshake answered 401"}
    assert kinds(output)[-1] == "connected"


async def test_a_url_that_is_not_a_websocket_url_is_a_fatal_error() -> None:
    async with opened(WebSocketBackend("http://127.0.0.1:9/agent")) as output:
        await output.wait_for(lambda o: bool(o.ended))
    (error,) = output.reported("error")
    assert error == {"backend": "websocket", "message": output.ended[0], "fatal": True}
    assert str(error["message"]).startswith("BACKEND_WS_URL is not a WebSocket URL")
    assert kinds(output) == ["error"]


# --- the downstream's token -------------------------------------------------------------------


async def test_the_auth_token_is_sent_on_the_first_connect_and_after_a_reconnect(
    start_app: AppFactory, open_stream: StreamFactory
) -> None:
    async with (
        serving() as downstream,
        start_app(
            media_backend="websocket",
            backend_ws_url=downstream.url,
            backend_ws_auth_token="s3cret-token",
        ) as live,
        open_stream(live, script=StreamScript(audio=tone(16000, 1.0))) as stream,
    ):
        await downstream.wait_for(lambda d: d.audio_frames >= 5)
        await downstream.connections[0].close()
        await downstream.wait_for(lambda d: len(d.starts) == 2)
        assert not stream.closed
    assert downstream.authorizations == ["Bearer s3cret-token"] * 2


async def test_without_a_token_no_authorization_header_is_sent() -> None:
    async with serving() as downstream, opened(WebSocketBackend(downstream.url)) as output:
        await output.wait_for(lambda o: bool(o.reported("connected")))
    assert downstream.authorizations == [None]


async def test_the_auth_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)  # websockets logs each handshake header at DEBUG
    token = SecretStr("s3cret-token")
    async with serving(Downstream(refuse_status=401)) as downstream:
        backend = WebSocketBackend(downstream.url, auth_token=token)
        async with opened(backend) as output:
            await output.wait_for(lambda o: bool(o.reported("reconnect")))
            downstream.refuse_status = None
            await output.wait_for(lambda o: bool(o.reported("connected")))
            await downstream.connections[0].send(json.dumps({"type": "transcript", "text": "hi"}))
            await output.wait_for(lambda o: bool(o.reported("transcript")))
    assert downstream.authorizations[-1] == "Bearer s3cret-token"
    bridge = [r for r in caplog.records if r.name != "websockets.server"]  # not the test's server
    assert any("handshake answered 401" in r.getMessage() for r in bridge)
    assert not [r for r in bridge if "s3cret" in r.getMessage()]
    assert "s3cret" not in repr(backend.__dict__)


async def test_a_redirect_is_not_followed_so_the_token_stays_with_the_configured_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(websocket, "BACKOFF_INITIAL_S", 60.0)
    async with serving() as elsewhere, serving(Downstream(redirect_to="")) as redirecting:
        redirecting.redirect_to = elsewhere.url
        backend = WebSocketBackend(redirecting.url, auth_token=SecretStr("s3cret-token"))
        async with opened(backend) as output:
            await output.wait_for(lambda o: bool(o.reports))
    assert output.reported("reconnect")[0]["reason"] == "handshake answered 302"
    assert redirecting.authorizations == ["Bearer s3cret-token"]
    assert elsewhere.authorizations == []
