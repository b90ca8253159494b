"""The websocket backend: relays a call to a downstream service (format: docs/websocket-backend.md).

Binary frames carry PCM16 mono both ways; text frames carry JSON control messages. If the
downstream drops, the call stays up: caller audio is discarded (and counted) while a reconnect
loop retries with exponential backoff, then sends `start` again with `"resumed": true`. The
last second of caller audio (and the call events of the gap) is kept while (re)connecting and
sent right after `start`, between a `replay` and a `live` marker: that audio is late, and a
downstream that answers in real time skips it rather than stay behind for the rest of the call.

The downstream may act on the call (`hang_up`, `transfer`, `send_dtmf`). The reader only
parses a request and queues it; one worker task the backend owns performs the queued actions
in order, so a slow ACS request never stalls the downstream's audio, and answers each with an
`action_result` on the connection that asked. A malformed request is answered at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from app.backends.base import (
    ActionAccepted,
    ActionFailed,
    AudioIn,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
)
from app.settings import Settings

log = logging.getLogger(__name__)

BACKOFF_INITIAL_S = 0.2
BACKOFF_MAX_S = 10.0
CONNECT_TIMEOUT_S = 10.0
PENDING_AUDIO_FRAMES = 50
PENDING_CALL_EVENTS = 20
QUEUED_ACTIONS = 8  # more waiting than this and the downstream is told to slow down
ACTIONS_GRACE_S = 2.0  # how long `close` lets queued actions finish (a transfer, then `end`)

ActionName = Literal["hang_up", "transfer", "send_dtmf"]


def create_backend(settings: Settings) -> WebSocketBackend:
    if not settings.backend_ws_url:
        raise BackendError("BACKEND_WS_URL is not set", fatal=True)
    return WebSocketBackend(settings.backend_ws_url, sample_rate=settings.backend_ws_sample_rate)


class WebSocketBackend:
    """One downstream WebSocket per call, reconnected when it drops."""

    def __init__(self, url: str, *, sample_rate: int | None = None) -> None:
        self.url = url
        self._rate = sample_rate
        self._socket: ClientConnection | None = None
        self._connected = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._call: CallContext | None = None
        self._output: MediaOutput | None = None
        self._actions: CallActions | None = None
        self._queued: asyncio.Queue[tuple[ActionRequest, ClientConnection]] = asyncio.Queue(
            QUEUED_ACTIONS
        )
        self._worker: asyncio.Task[None] | None = None
        self._pending: deque[bytes] = deque()
        self._pending_events: deque[str] = deque(maxlen=PENDING_CALL_EVENTS)
        self.connects = 0
        self.discarded_frames = 0
        self.replayed_frames = 0

    @property
    def sample_rate(self) -> int | None:
        return self._rate

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self._call = call
        self._output = output
        self._actions = actions
        self._worker = asyncio.create_task(self._perform_actions())
        self._task = asyncio.create_task(self._run())

    async def receive(self, event: InboundEvent) -> None:
        socket = self._socket
        if socket is None:
            self._keep(event)
            return
        try:
            if type(event) is AudioIn:
                await socket.send(event.pcm)
            elif isinstance(event, DtmfIn):
                await socket.send(
                    json.dumps(
                        {"type": "dtmf", "digit": event.digit, "participant": event.participant_id}
                    )
                )
            elif isinstance(event, TranscriptIn):
                await socket.send(
                    json.dumps(
                        {
                            "type": "transcript",
                            "text": event.text,
                            "final": event.final,
                            "participant": event.participant_id,
                        }
                    )
                )
            elif isinstance(event, CallEventIn):
                await socket.send(call_event_message(event))
        except ConnectionClosed:
            # The reader notices too and reconnects; this frame is lost with the connection.
            self.discarded_frames += 1

    def _keep(self, event: InboundEvent) -> None:
        # Downstream is away: keep the last second of audio to replay when it is back.
        if type(event) is AudioIn:
            if len(self._pending) == PENDING_AUDIO_FRAMES:
                self._pending.popleft()
                self.discarded_frames += 1
            self._pending.append(event.pcm)
        elif isinstance(event, CallEventIn):
            self._pending_events.append(call_event_message(event))

    async def close(self) -> None:
        socket = self._socket
        if socket is not None:
            with contextlib.suppress(ConnectionClosed, OSError):
                await socket.send(json.dumps({"type": "stop"}))
        if self._worker is not None:
            # An action asked for just before the media ended (a transfer, say) still happens.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(ACTIONS_GRACE_S):
                    await self._queued.join()
        for task in (self._task, self._worker):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._task = self._worker = None

    async def _run(self) -> None:
        delay = BACKOFF_INITIAL_S
        while True:
            try:
                async with connect(
                    self.url, open_timeout=CONNECT_TIMEOUT_S, max_size=2**22
                ) as socket:
                    await socket.send(json.dumps(self._start_message()))
                    self.connects += 1
                    await self._replay(socket)
                    self._socket = socket
                    delay = BACKOFF_INITIAL_S
                    await self._read(socket)
            except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
                self._report_drop(exc)
            except InvalidURI as exc:
                self._fail(f"BACKEND_WS_URL is not a WebSocket URL: {exc}")
                return
            finally:
                self._socket = None
            await asyncio.sleep(delay * (0.5 + random.random()))  # noqa: S311 (jitter)
            delay = min(delay * 2, BACKOFF_MAX_S)

    async def _replay(self, socket: ClientConnection) -> None:
        """Send what was kept while away: call events, then the audio, marked as replayed."""
        # Until both are empty (more may be kept while these are sent): nothing is left behind
        # once the socket is shared, and each block's `ms` counts exactly the frames it holds.
        while True:
            while self._pending_events:
                await socket.send(self._pending_events.popleft())
            if not self._pending:
                return
            block = list(self._pending)
            self._pending.clear()
            self.replayed_frames += len(block)
            await socket.send(json.dumps(replay_message(block, self._bytes_per_ms())))
            for frame in block:
                await socket.send(frame)
            await socket.send(LIVE_MESSAGE)

    async def _read(self, socket: ClientConnection) -> None:
        output = self._output
        assert output is not None
        async for message in socket:
            if isinstance(message, bytes):
                await output.play(message)
                continue
            try:
                control = parse_control(message)
                kind = control["type"]
                if kind == "stop_audio":
                    output.stop_audio()
                elif kind == "end":
                    output.end(str(control.get("reason", "downstream ended the session")))
                elif kind == "transcript":
                    if isinstance(control.get("text"), str):
                        output.report(
                            BackendEvent("transcript", {"role": "agent", "text": control["text"]})
                        )
                else:
                    self._queue(parse_action(control), socket)
            except MalformedMessage as exc:
                log.warning("downstream sent a malformed message: %s", exc.message)
                await socket.send(json.dumps(exc.result()))

    def _queue(self, request: ActionRequest, socket: ClientConnection) -> None:
        try:
            self._queued.put_nowait((request, socket))
        except asyncio.QueueFull:
            raise MalformedMessage(
                "too_many_actions",
                f"{QUEUED_ACTIONS} actions are already waiting; wait for their results",
                action=request.action,
                request_id=request.id,
            ) from None

    async def _perform_actions(self) -> None:
        while True:
            request, socket = await self._queued.get()
            try:
                result = await self._perform(request)
                try:
                    await socket.send(json.dumps(result))
                except ConnectionClosed:
                    log.info("the result of %s was lost with its connection", request.action)
            finally:
                self._queued.task_done()

    async def _perform(self, request: ActionRequest) -> dict[str, Any]:
        actions = self._actions
        assert actions is not None
        try:
            if request.action == "hang_up":
                accepted = await actions.hang_up()
            elif request.action == "transfer":
                accepted = await actions.transfer(request.argument)
            else:
                accepted = await actions.send_dtmf(request.argument)
        except ActionFailed as exc:
            log.info("downstream's %s failed: %s", request.action, exc.code)
            return action_result(request.action, request.id, failure=(exc.code, exc.message))
        except Exception:
            # Not ours to expect, but the downstream still gets an answer and the worker goes on.
            log.exception("downstream's %s failed unexpectedly", request.action)
            failure = ("internal_error", f"the bridge could not {request.action.replace('_', ' ')}")
            return action_result(request.action, request.id, failure=failure)
        return action_result(request.action, request.id, accepted=accepted)

    def _start_message(self) -> dict[str, Any]:
        call = self._call
        assert call is not None
        return {
            "type": "start",
            "resumed": self.connects > 0,
            "callConnectionId": call.call_connection_id,
            "correlationId": call.correlation_id,
            "caller": call.caller,
            "callee": call.callee,
            "sampleRate": self._rate or call.stream.sample_rate,
            "channels": 1,
            "encoding": "pcm_s16le",
            "audioChannel": call.channel,
        }

    def _bytes_per_ms(self) -> int:
        call = self._call
        assert call is not None
        return (self._rate or call.stream.sample_rate) * 2 // 1000

    def _report_drop(self, exc: BaseException) -> None:
        log.warning("downstream websocket unavailable (%s); reconnecting", type(exc).__name__)
        if self._output is not None:
            self._output.report(
                BackendEvent("reconnect", {"backend": "websocket", "error": type(exc).__name__})
            )

    def _fail(self, reason: str) -> None:
        log.error(reason)
        if self._output is not None:
            self._output.report(BackendEvent("error", {"message": reason, "fatal": True}))
            self._output.end(reason)


# --- the downstream's control messages, parsed without I/O -------------------------------------


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """A call action the downstream asked for: `argument` is the target or the tones."""

    action: ActionName
    argument: str = ""
    id: str | None = None


class MalformedMessage(Exception):
    """A downstream text message the bridge cannot act on; answered as a failed action_result."""

    def __init__(
        self, code: str, message: str, *, action: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.action = action
        self.request_id = request_id

    def result(self) -> dict[str, Any]:
        return action_result(self.action, self.request_id, failure=(self.code, self.message))


def parse_control(text: str) -> dict[str, Any]:
    """A text frame as a control message: a JSON object with a string `type`."""
    try:
        control = json.loads(text)
    except ValueError:
        raise MalformedMessage("invalid_json", "a text frame must be a JSON object") from None
    if not isinstance(control, dict):
        raise MalformedMessage("invalid_message", "a text frame must be a JSON object")
    if not isinstance(control.get("type"), str):
        raise MalformedMessage("invalid_message", 'a message needs a string "type"')
    return control


def parse_action(control: Mapping[str, Any]) -> ActionRequest:
    """The call action `control` asks for; raises MalformedMessage saying what is wrong."""
    kind = str(control["type"])
    request_id = control.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedMessage("invalid_field", '"id" must be a string', action=kind)
    if kind == "hang_up":
        return ActionRequest("hang_up", id=request_id)
    if kind == "transfer":
        return ActionRequest("transfer", _text_field(control, "target", request_id), request_id)
    if kind == "send_dtmf":
        return ActionRequest("send_dtmf", _text_field(control, "tones", request_id), request_id)
    raise MalformedMessage(
        "unknown_type",
        f"unknown message type {kind!r} (actions: hang_up, transfer, send_dtmf)",
        action=kind,
        request_id=request_id,
    )


def _text_field(control: Mapping[str, Any], name: str, request_id: str | None) -> str:
    value = control.get(name)
    if not isinstance(value, str) or not value.strip():
        kind = str(control["type"])
        raise MalformedMessage(
            "invalid_field",
            f'{kind} needs a non-empty string "{name}"',
            action=kind,
            request_id=request_id,
        )
    return value.strip()


def action_result(
    action: str | None,
    request_id: str | None,
    *,
    accepted: ActionAccepted | None = None,
    failure: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """The `action_result` answering one request: `accepted` by ACS, or a (code, message)."""
    result: dict[str, Any] = {
        "type": "action_result",
        "action": action,
        "ok": failure is None,
        "error": failure[1] if failure else None,
        "code": failure[0] if failure else None,
        "operation_context": accepted.operation_context if accepted else None,
    }
    if request_id is not None:
        result["id"] = request_id
    return result


def replay_message(frames: list[bytes], bytes_per_ms: int) -> dict[str, Any]:
    """Announces kept audio: the binary frames up to `LIVE_MESSAGE` were spoken earlier."""
    return {"type": "replay", "ms": sum(map(len, frames)) // bytes_per_ms}


LIVE_MESSAGE = json.dumps({"type": "live"})


def call_event_message(event: CallEventIn) -> str:
    """A Call Automation event as the downstream gets it: `call_event` with the event's data."""
    data = {key: value for key, value in event.data.items() if key not in ("type", "event")}
    return json.dumps({"type": "call_event", "event": event.name, **data}, default=str)
