"""The seam between the Realtime conversation and a service's socket.

The conversation speaks the OpenAI GA Realtime protocol: it sends GA client events and reads
GA server events (`openai.types.realtime`). A service that speaks a dialect of it (Azure Voice
Live keeps the older event names) supplies a `RealtimeService` whose sockets translate both
ways, so barge-in, tools, transcripts and reconnects are one implementation for every service.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal, Protocol, cast

import orjson
from openai import WebSocketConnectionClosedError
from openai._models import construct_type_unchecked
from openai.resources.realtime.realtime import AsyncRealtimeConnection
from openai.types.realtime.realtime_function_tool_param import RealtimeFunctionToolParam
from openai.types.realtime.realtime_server_event import RealtimeServerEvent
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from app.backends.realtime.errors import SocketClosed
from app.backends.realtime.uplink import append_message

ClientEvent = Mapping[str, Any]
AUDIO_DELTA: Final = "response.output_audio.delta"


@dataclass(frozen=True, slots=True)
class AudioDelta:
    """A `response.output_audio.delta` read as plain JSON: the event that comes with every
    20 ms of the model's speech is not built through the SDK's union of models (about 50 us
    each, a third of the Realtime path's CPU in the bench)."""

    response_id: str
    item_id: str
    delta: str
    type: Literal["response.output_audio.delta"] = AUDIO_DELTA


ServerEvent = RealtimeServerEvent | AudioDelta


class RealtimeSocket(Protocol):
    """One open session with a Realtime service; every method raises `SocketClosed` once the
    socket is gone."""

    async def send(self, event: ClientEvent) -> None:
        """Send one client event, GA-shaped."""
        ...

    async def append(self, pcm: bytes) -> None:
        """Append caller audio (PCM16 at the session's input rate) to the input buffer."""
        ...

    async def recv(self) -> ServerEvent:
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
    """A socket of the `openai` SDK's Realtime client (OpenAI, Azure OpenAI).

    Appends and reads go straight on the SDK's websocket: its send path (a queue for its own
    reconnects, which the backend does not turn on: it reconnects itself, with the session and
    history) asks anyio for the current task on every send, about 2 % of the Realtime path's
    CPU. The SDK keeps the handshake, `parse_event` and `close`; an SDK whose websocket is not
    where it was is used through its public methods.

    A send on an open socket with room in its write buffer is framed and written on the spot,
    as `websockets` itself does inside `send`, without the async context manager it enters for
    every message (about 3 % of the path's CPU); anything else (closing, a fragmented message
    under way, a full buffer to wait on) goes through `send`.
    """

    def __init__(self, connection: AsyncRealtimeConnection) -> None:
        self._connection = connection
        ws = getattr(connection, "_connection", None)
        self._ws = ws if isinstance(ws, ClientConnection) else None

    async def send(self, event: ClientEvent) -> None:
        # The events are built as the SDK's TypedDicts already: serialise them once, directly.
        await self._send(orjson.dumps(event).decode())

    async def append(self, pcm: bytes) -> None:
        await self._send(append_message(pcm))

    async def recv(self) -> ServerEvent:
        try:
            ws = self._ws
            raw = await (ws.recv(decode=False) if ws is not None else self._connection.recv_bytes())
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc
        return audio_delta(raw) or self._connection.parse_event(raw)

    async def close(self) -> None:
        try:
            await self._connection.close()
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc

    async def _send(self, text: str) -> None:
        ws = self._ws
        if (
            ws is not None
            and ws.protocol.state is State.OPEN
            and ws.fragmented_send_waiter is None
            and not ws.paused
            and not ws.transport.is_closing()
        ):
            try:
                ws.protocol.send_text(text.encode())
                ws.send_data()
            except Exception as exc:  # as `send` does: a failed write ends the connection
                ws.transport.abort()
                raise SocketClosed(str(exc)) from exc
            return
        try:
            await (ws.send(text) if ws is not None else self._connection.send_raw(text))
        except (ConnectionClosed, WebSocketConnectionClosedError) as exc:
            raise SocketClosed(str(exc)) from exc


def warm_event_parsing() -> None:
    """Build the SDK's server-event models once (about 1.4 MiB and 15 ms, blocking: call it in
    a thread at startup rather than on the first call's `session.created`)."""
    construct_type_unchecked(
        value={"type": "session.created", "event_id": "", "session": {"type": "realtime"}},
        type_=cast(Any, RealtimeServerEvent),
    )


def audio_delta(raw: bytes | str) -> AudioDelta | None:
    """`raw` as an AudioDelta when it is a well-formed audio delta, else None."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(data, dict) or data.get("type") != AUDIO_DELTA:
        return None
    response_id, item_id, delta = data.get("response_id"), data.get("item_id"), data.get("delta")
    if isinstance(response_id, str) and isinstance(item_id, str) and isinstance(delta, str):
        return AudioDelta(response_id, item_id, delta)
    return None  # the SDK's model says what is wrong with it
