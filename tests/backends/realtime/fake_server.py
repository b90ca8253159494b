"""A fake Realtime service on a real WebSocket at 127.0.0.1:0, scripted per test: the OpenAI GA
protocol, or (`dialect="voice-live"`) Azure Voice Live's (its path, preview event names, and the
session's audio at the rate `session.update` asked for).

It does what the bridge relies on: `session.created` on connect, `session.updated`, appended
audio recorded, `conversation.item.create` acknowledged, `response.cancel` and
`conversation.item.truncate` checked the way the service checks them (cancel without a response
in flight, truncate past the generated audio: errors that echo the client's event_id). Tests
drive the rest through `FakeSession`: responses with audio, function calls, speech_started,
errors, drops.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

MODEL_RATE = 24000
BYTES_PER_MS = MODEL_RATE * 2 // 1000
Event = dict[str, Any]
Dialect = Literal["ga", "voice-live"]
VOICE_LIVE_PATH = "/voice-live/realtime"
# GA event names and what Voice Live calls them.
VOICE_LIVE_NAMES = {
    "response.output_audio.delta": "response.audio.delta",
    "response.output_audio.done": "response.audio.done",
    "response.output_audio_transcript.done": "response.audio_transcript.done",
    "conversation.item.added": "conversation.item.created",
}
VOICE_LIVE_RATES = {"pcm16": 24000, "pcm16_16000hz": 16000, "pcm16_8000hz": 8000}


def model_tone(ms: int, freq: float = 300.0, rate: int = MODEL_RATE) -> bytes:
    """`ms` of a sine tone as PCM16 at `rate` (what the model "says")."""
    t = np.arange(rate * ms // 1000) / rate
    return (np.sin(2 * np.pi * freq * t) * 0.3 * 32767).astype("<i2").tobytes()


@dataclass(frozen=True)
class Handshake:
    """The upgrade request of one connection."""

    path: str
    headers: Headers


@dataclass
class FakeSession:
    """One client connection, as the service sees it."""

    connection: ServerConnection
    dialect: Dialect = "ga"
    rate: int = MODEL_RATE  # the session's audio, both ways
    received: list[Event] = field(default_factory=list)
    appended: bytearray = field(default_factory=bytearray)
    append_sizes: list[int] = field(default_factory=list)
    generated: dict[str, int] = field(default_factory=dict)  # item id -> audio bytes sent
    active_response: str | None = None
    closed: bool = False
    _ids: itertools.count[int] = field(default_factory=itertools.count)
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def bytes_per_ms(self) -> int:
        return self.rate * 2 // 1000

    def name(self, ga_name: str) -> str:
        """What this session's dialect calls the GA server event `ga_name`."""
        return VOICE_LIVE_NAMES.get(ga_name, ga_name) if self.dialect == "voice-live" else ga_name

    def of_type(self, kind: str) -> list[Event]:
        return [event for event in self.received if event["type"] == kind]

    async def wait_for(
        self, predicate: Callable[[FakeSession], bool], within_s: float = 5.0
    ) -> None:
        async with asyncio.timeout(within_s):
            while not predicate(self):
                self._changed.clear()
                await self._changed.wait()

    async def wait_for_event(self, kind: str, count: int = 1) -> Event:
        """The `count`-th client event of type `kind`, once it has arrived."""
        await self.wait_for(lambda s: len(s.of_type(kind)) >= count)
        return self.of_type(kind)[count - 1]

    async def send(self, event: Event) -> None:
        event.setdefault("event_id", f"event_{next(self._ids)}")
        with contextlib.suppress(ConnectionClosed):
            await self.connection.send(json.dumps(event))

    # --- scripted service behaviour -------------------------------------------------------
    async def start_response(self, response_id: str) -> None:
        self.active_response = response_id
        await self.send({"type": "response.created", "response": _response(response_id)})

    async def audio(self, response_id: str, item_id: str, pcm: bytes, chunk_ms: int = 100) -> None:
        """Audio deltas for the item, as fast as the socket takes them (faster than real time)."""
        size = chunk_ms * self.bytes_per_ms
        for start in range(0, len(pcm), size):
            chunk = pcm[start : start + size]
            self.generated[item_id] = self.generated.get(item_id, 0) + len(chunk)
            await self.send(
                {
                    "type": self.name("response.output_audio.delta"),
                    "response_id": response_id,
                    "item_id": item_id,
                    "output_index": 0,
                    "content_index": 0,
                    "delta": base64.b64encode(chunk).decode(),
                }
            )

    async def audio_done(self, response_id: str, item_id: str) -> None:
        """The item's audio is complete (the service sends this before `response.done`)."""
        await self.send(
            {
                "type": self.name("response.output_audio.done"),
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
            }
        )

    async def finish_response(
        self, response_id: str, item_id: str, transcript: str, status: str = "completed"
    ) -> None:
        await self.send(
            {
                "type": self.name("response.output_audio_transcript.done"),
                "response_id": response_id,
                "item_id": item_id,
                "output_index": 0,
                "content_index": 0,
                "transcript": transcript,
            }
        )
        await self.send({"type": "response.done", "response": _response(response_id, status)})
        if self.active_response == response_id:
            self.active_response = None

    async def function_call(
        self, response_id: str, call_id: str, name: str, arguments: str = "{}"
    ) -> Event:
        """The model calls a function: its arguments done, then its output item done."""
        item = {
            "id": f"item_{call_id}",
            "type": "function_call",
            "object": "realtime.item",
            "status": "completed",
            "call_id": call_id,
            "name": name,
            "arguments": arguments,
        }
        await self.send(
            {
                "type": "response.function_call_arguments.done",
                "response_id": response_id,
                "item_id": item["id"],
                "output_index": 0,
                "call_id": call_id,
                "name": name,
                "arguments": arguments,
            }
        )
        await self.send(
            {
                "type": "response.output_item.done",
                "response_id": response_id,
                "output_index": 0,
                "item": item,
            }
        )
        return item

    async def end_response(
        self, response_id: str, output: list[Event] | None = None, status: str = "completed"
    ) -> None:
        """response.done with its output items (function calls, say)."""
        response = {**_response(response_id, status), "output": output or []}
        await self.send({"type": "response.done", "response": response})
        if self.active_response == response_id:
            self.active_response = None

    def function_outputs(self) -> dict[str, str]:
        """call_id -> output of the `function_call_output` items the client sent."""
        return {
            event["item"]["call_id"]: event["item"]["output"]
            for event in self.of_type("conversation.item.create")
            if event["item"].get("type") == "function_call_output"
        }

    def kinds(self) -> list[str]:
        """The client's events in order, `function_call_output` items told apart."""
        return [
            "function_call_output"
            if event["type"] == "conversation.item.create"
            and event["item"].get("type") == "function_call_output"
            else event["type"]
            for event in self.received
        ]

    async def speech_started(self, item_id: str = "item_caller", audio_start_ms: int = 0) -> None:
        await self.send(
            {
                "type": "input_audio_buffer.speech_started",
                "audio_start_ms": audio_start_ms,
                "item_id": item_id,
            }
        )

    async def speech_stopped(self, item_id: str = "item_caller", audio_end_ms: int = 0) -> None:
        await self.send(
            {
                "type": "input_audio_buffer.speech_stopped",
                "audio_end_ms": audio_end_ms,
                "item_id": item_id,
            }
        )

    async def caller_said(self, item_id: str, text: str) -> None:
        """The caller's turn: committed, then its transcription (which completes later)."""
        await self.send({"type": "input_audio_buffer.committed", "item_id": item_id})
        await self.send(
            {
                "type": "conversation.item.input_audio_transcription.completed",
                "item_id": item_id,
                "content_index": 0,
                "transcript": text,
                "usage": {"type": "duration", "seconds": 1.0},
            }
        )

    async def error(
        self,
        code: str,
        message: str = "",
        *,
        kind: str = "invalid_request_error",
        event_id: str | None = None,
    ) -> None:
        await self.send(
            {
                "type": "error",
                "error": {
                    "type": kind,
                    "code": code,
                    "message": message or code,
                    "event_id": event_id,
                    "param": None,
                },
            }
        )

    async def drop(self) -> None:
        """The connection dies without a close handshake (a network drop)."""
        transport = self.connection.transport
        transport.abort()

    # --- what the service does with client events ---------------------------------------------
    async def on_event(self, event: Event) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.append":
            pcm = base64.b64decode(event["audio"])
            self.appended += pcm
            self.append_sizes.append(len(pcm))
            return  # not kept in `received`: thousands of them
        self.received.append(event)
        if kind == "session.update":
            if self.dialect == "voice-live":
                session = event["session"]
                rate = session.get("input_audio_sampling_rate", MODEL_RATE)
                if VOICE_LIVE_RATES[session.get("output_audio_format", "pcm16")] != rate:
                    await self.error("invalid_value", "input and output rates differ")
                self.rate = rate
            await self.send({"type": "session.updated", "session": event["session"]})
        elif kind == "conversation.item.create":
            item = {**event["item"], "id": f"item_replayed_{next(self._ids)}"}
            await self.send({"type": self.name("conversation.item.added"), "item": item})
        elif kind == "response.cancel":
            if self.active_response is None:
                await self.error("response_cancel_not_active", event_id=event.get("event_id"))
            else:
                cancelled, self.active_response = self.active_response, None
                await self.send(
                    {"type": "response.done", "response": _response(cancelled, "cancelled")}
                )
        elif kind == "conversation.item.truncate":
            generated_ms = self.generated.get(event["item_id"], 0) // self.bytes_per_ms
            if event["audio_end_ms"] > generated_ms or generated_ms == 0:
                await self.error(
                    "invalid_value", "audio_end_ms too long", event_id=event.get("event_id")
                )
            else:
                await self.send(
                    {
                        "type": "conversation.item.truncated",
                        "item_id": event["item_id"],
                        "content_index": 0,
                        "audio_end_ms": event["audio_end_ms"],
                    }
                )


def _response(response_id: str, status: str = "in_progress") -> Event:
    return {"id": response_id, "object": "realtime.response", "status": status, "output": []}


@dataclass
class FakeRealtime:
    """The fake service: every connection is a FakeSession; `refuse_status` fails handshakes."""

    dialect: Dialect = "ga"
    server: Server | None = None
    sessions: list[FakeSession] = field(default_factory=list)
    handshakes: list[Handshake] = field(default_factory=list)
    refuse_status: int | None = None
    _changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def port(self) -> int:
        assert self.server is not None
        port: int = next(iter(self.server.sockets)).getsockname()[1]
        return port

    @property
    def openai_base_url(self) -> str:
        """What OPENAI_BASE_URL would be for this server."""
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def voicelive_endpoint(self) -> str:
        """What AZURE_VOICELIVE_ENDPOINT would be (plain http: the SDK then uses ws://)."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def azure_endpoint(self) -> str:
        """What AZURE_OPENAI_ENDPOINT would be (plain http: the SDK then uses ws://)."""
        return f"http://127.0.0.1:{self.port}"

    async def session(self, index: int = 0, within_s: float = 5.0) -> FakeSession:
        """The `index`-th connection, once it is open."""
        async with asyncio.timeout(within_s):
            while len(self.sessions) <= index:
                self._changed.clear()
                await self._changed.wait()
        return self.sessions[index]

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        self.handshakes.append(Handshake(request.path, request.headers))
        if self.refuse_status is not None:
            return connection.respond(self.refuse_status, "refused by the fake\n")
        if self.dialect == "voice-live" and not request.path.startswith(VOICE_LIVE_PATH + "?"):
            return connection.respond(404, "no such path\n")
        return None

    async def _handler(self, connection: ServerConnection) -> None:
        session = FakeSession(connection, self.dialect)
        self.sessions.append(session)
        self._changed.set()
        created: Event = {"id": "sess_fake"}
        if self.dialect == "ga":
            created["type"] = "realtime"
        await session.send({"type": "session.created", "session": created})
        try:
            async for message in connection:
                await session.on_event(json.loads(message))
                session._changed.set()
        except ConnectionClosed:
            pass
        finally:
            session.closed = True
            session._changed.set()


@contextlib.asynccontextmanager
async def fake_realtime(dialect: Dialect = "ga") -> AsyncIterator[FakeRealtime]:
    """Serve a FakeRealtime on 127.0.0.1:0 for the duration of the block."""
    fake = FakeRealtime(dialect)
    async with serve(
        fake._handler, "127.0.0.1", 0, process_request=fake._process_request, max_size=None
    ) as server:
        fake.server = server
        yield fake
