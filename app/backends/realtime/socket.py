"""The seam between the Realtime conversation and a service's socket.

The conversation speaks the OpenAI GA Realtime protocol: it sends GA client events and reads
GA server events (`openai.types.realtime`). A service that speaks a dialect of it (Azure Voice
Live keeps the older event names) supplies a `RealtimeService` whose sockets translate both
ways, so barge-in, tools, transcripts and reconnects are one implementation for every service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import orjson
from openai import WebSocketConnectionClosedError
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from websockets.exceptions import ConnectionClosed

from app.backends.realtime.errors import SocketClosed
from app.backends.realtime.uplink import append_message

ClientEvent = Mapping[str, Any]


class RealtimeSocket(Protocol):
    """One open session with a Realtime service; every method raises `SocketClosed` once the
    socket is gone."""

    async def send(self, event: ClientEvent) -> None:
        """Send one client event, GA-shaped."""
        ...

    async def append(self, pcm: bytes) -> None:
        """Append caller audio (PCM16 at the session's input rate) to the input buffer."""
        ...

    async def recv(self) -> RealtimeServerEvent:
        """The next server event, GA-shaped."""
        ...

    async def close(self) -> None:
        """Close the socket (idempotent)."""
        ...


class RealtimeService(Protocol):
    """Opens sessions with one Realtime service for one call."""

    name: str

    @property
    def model(self) -> str:
        """What the sessions run on (a model, a deployment or an agent), for the logs."""
        ...

    @property
    def sample_rate(self) -> int | None:
        """The PCM rate of the service's audio, both ways; None: the call's own rate."""
        ...

    def session_update(
        self,
        instructions: str,
        tools: Sequence[RealtimeFunctionToolParam],
        sample_rate: int,
    ) -> ClientEvent:
        """The `session.update` sent first on every socket."""
        ...

    async def connect(self) -> RealtimeSocket:
        """A new socket; raises RealtimeFatal or RealtimeUnavailable."""
        ...

    async def close(self) -> None:
        """Release the service's client and credential (idempotent)."""
        ...


class OpenAISocket:
    """A socket of the `openai` SDK's Realtime client (OpenAI, Azure OpenAI)."""

    def __init__(self, connection: AsyncRealtimeConnection) -> None:
        self._connection = connection

    async def send(self, event: ClientEvent) -> None:
        # The events are built as the SDK's TypedDicts already: serialise them once, directly.
        try:
            await self._connection.send_raw(orjson.dumps(event).decode())
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc

    async def append(self, pcm: bytes) -> None:
        try:
            await self._connection.send_raw(append_message(pcm))
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc

    async def recv(self) -> RealtimeServerEvent:
        try:
            return await self._connection.recv()
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc

    async def close(self) -> None:
        try:
            await self._connection.close()
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc
