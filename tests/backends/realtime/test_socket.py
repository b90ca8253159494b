"""The model's audio deltas are read as plain JSON, straight off the SDK's websocket; every
other event goes through the SDK's models."""

from __future__ import annotations

import asyncio
import contextlib

import orjson
import pytest
from websockets.asyncio.client import ClientConnection

from app.backends.realtime.connection import openai_connector
from app.backends.realtime.errors import SocketClosed
from app.backends.realtime.socket import AudioDelta, OpenAISocket, RealtimeService, audio_delta
from app.settings import Settings
from tests.backends.realtime.fake_server import FakeRealtime


def test_an_audio_delta_is_read_without_the_sdks_models() -> None:
    raw = orjson.dumps(
        {
            "event_id": "event_1",
            "type": "response.output_audio.delta",
            "response_id": "resp_1",
            "item_id": "item_1",
            "output_index": 0,
            "content_index": 0,
            "delta": "AAAA",
        }
    )
    assert audio_delta(raw) == AudioDelta("resp_1", "item_1", "AAAA")
    assert audio_delta(raw.decode()) == AudioDelta("resp_1", "item_1", "AAAA")


def test_other_events_and_malformed_deltas_are_left_to_the_sdk() -> None:
    assert audio_delta(b'{"type":"session.created","session":{}}') is None
    assert audio_delta(b'{"type":"response.output_audio.delta","item_id":"i","delta":"A"}') is None
    assert audio_delta(b"[1, 2]") is None
    assert audio_delta(b"not json") is None


async def test_appends_and_reads_go_straight_on_the_sdks_websocket(fake: FakeRealtime) -> None:
    settings = Settings(
        _env_file=None, openai_api_key="sk-test", openai_base_url=fake.openai_base_url
    )
    connector = openai_connector(settings)
    socket = await connector.connect()
    try:
        assert isinstance(socket, OpenAISocket)
        assert isinstance(socket._ws, ClientConnection)  # not the SDK's send queue
        await socket.append(b"\x01\x00" * 240)
        session = await fake.session()
        await session.wait_for(lambda s: bytes(s.appended) == b"\x01\x00" * 240)
        assert (await socket.recv()).type == "session.created"  # the fake's first event
    finally:
        await socket.close()
        await connector.close()


async def _open(fake: FakeRealtime) -> tuple[OpenAISocket, RealtimeService]:
    settings = Settings(
        _env_file=None, openai_api_key="sk-test", openai_base_url=fake.openai_base_url
    )
    connector = openai_connector(settings)
    socket = await connector.connect()
    assert isinstance(socket, OpenAISocket)
    return socket, connector


async def test_a_full_write_buffer_holds_an_append_until_it_drains(fake: FakeRealtime) -> None:
    socket, connector = await _open(fake)
    try:
        ws = socket._ws
        assert ws is not None
        ws.pause_writing()  # what the transport does when its buffer passes the high-water mark
        append = asyncio.create_task(socket.append(b"\x02\x00" * 240))
        await asyncio.sleep(0.05)
        assert not append.done()  # back-pressure: the append waits rather than piling up
        ws.resume_writing()
        await asyncio.wait_for(append, 2)
        session = await fake.session()
        await session.wait_for(lambda s: bytes(s.appended) == b"\x02\x00" * 240)
    finally:
        await socket.close()
        await connector.close()


async def _append_until_it_fails(socket: OpenAISocket) -> None:
    for _ in range(100):  # the drop reaches the client after a moment
        await socket.append(b"\x00\x00" * 240)
        await asyncio.sleep(0.01)


async def test_an_append_on_a_dropped_socket_says_the_socket_closed(fake: FakeRealtime) -> None:
    socket, connector = await _open(fake)
    try:
        session = await fake.session()
        await session.drop()
        with pytest.raises(SocketClosed):
            await _append_until_it_fails(socket)
    finally:
        with contextlib.suppress(SocketClosed):
            await socket.close()
        await connector.close()
