"""The OpenAI / Azure OpenAI Realtime backend: the caller talks to a speech-to-speech model.

One task per call owns the Realtime socket: it connects, sends `session.update`, replays the
conversation so far (after a reconnect), then reads server events until the socket drops, the
service ends the session or the session is due for renewal, and starts over. The caller's
audio comes in through `receive` and goes out as batched appends; while there is no socket, the
last second of it is kept. What the events mean for the call is the `Conversation`'s business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections import deque
from dataclasses import dataclass
from typing import Literal

import httpx

from app.agent.runner import ToolRunner
from app.agent.tools import ToolConfig
from app.backends.base import (
    AudioIn,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
    log_fields,
)
from app.backends.realtime.conversation import Conversation
from app.backends.realtime.errors import (
    RealtimeFatal,
    RealtimeUnavailable,
    SessionExpired,
    SocketClosed,
)
from app.backends.realtime.history import Role
from app.backends.realtime.renewal import RenewalTimer
from app.backends.realtime.session_config import RealtimeConfig, greeting_request
from app.backends.realtime.socket import RealtimeService, RealtimeSocket
from app.backends.realtime.uplink import AppendBatcher

log = logging.getLogger(__name__)

RENEW_AFTER_S = 55 * 60.0  # the service caps a session at 60 minutes
RENEW_DEADLINE_S = 58 * 60.0
RENEW_RETRY_S = 1.0
PENDING_AUDIO_MS = 1000
DISCARD_TIMEOUT_S = 2.0

SessionOutcome = Literal["renew", "dropped"]


@dataclass(frozen=True, slots=True)
class ReconnectPolicy:
    """Exponential backoff with jitter; `attempts` failures in a row end the media session."""

    initial_s: float = 0.25
    max_s: float = 5.0
    attempts: int = 8

    def delay(self, attempt: int) -> float:
        base = min(self.initial_s * 2.0 ** (attempt - 1), self.max_s)
        return base * (0.5 + random.random() / 2)  # noqa: S311 (jitter, not cryptography)


class RealtimeBackend:
    """One Realtime conversation per call, kept alive across drops and renewals, with any
    `RealtimeService` (OpenAI, Azure OpenAI, Azure Voice Live)."""

    def __init__(
        self,
        connector: RealtimeService,
        config: RealtimeConfig,
        *,
        name: str = "openai",
        reconnect: ReconnectPolicy | None = None,
        renew_after_s: float = RENEW_AFTER_S,
        renew_deadline_s: float = RENEW_DEADLINE_S,
        tools: ToolConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.name = name
        self._connector = connector
        self._config = config
        self._tools = tools or ToolConfig()
        self._http_client = http_client  # the app's, shared by every call's custom tools
        self._reconnect = reconnect or ReconnectPolicy()
        self._renew_after_s = renew_after_s
        self._renew_deadline_s = max(renew_deadline_s, renew_after_s)
        # Both follow the call's stream, so they are set in `open` (which comes first).
        self._rate: int
        self._batcher: AppendBatcher
        self._pending: deque[bytes] = deque(maxlen=max(1, PENDING_AUDIO_MS // config.append_ms))
        self._instructions = config.instructions
        self._call: CallContext | None = None
        self._output: MediaOutput | None = None
        self._conversation: Conversation | None = None
        self._connection: RealtimeSocket | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self._greeted = False
        self._session_live = False
        self.connects = 0
        self.appends_sent = 0

    @property
    def sample_rate(self) -> int | None:
        return self._connector.sample_rate

    @property
    def dropped_deltas(self) -> int:
        """Audio deltas of interrupted responses that were not played."""
        return 0 if self._conversation is None else self._conversation.dropped_deltas

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self._call, self._output = call, output
        rate = self._rate = self._connector.sample_rate or call.stream.sample_rate
        self._batcher = AppendBatcher(
            self._config.append_bytes_at(rate), rate * 2 * call.stream.frame_ms // 1000
        )
        path = self._config.instructions_file
        if path is not None:
            try:
                self._instructions = (await asyncio.to_thread(path.read_text, "utf-8")).strip()
            except (OSError, UnicodeDecodeError) as exc:
                message = f"cannot read REALTIME_INSTRUCTIONS_FILE: {exc}"
                raise BackendError(message, fatal=True) from exc
        runner = None
        if self._tools.tools:
            runner = ToolRunner(self._tools, call, actions, client=self._http_client)
        self._conversation = Conversation(output, self._log_extra(), runner, sample_rate=rate)
        if call.history:
            # The call was served before (its stream came back here): the model gets the
            # conversation so far in its first session, and does not greet the caller again.
            for index, (role, text) in enumerate(call.history):
                speaker: Role = "agent" if role == "agent" else "caller"
                self._conversation.history.record(f"earlier_{index}", speaker, text)
            self._greeted = True
        self._task = asyncio.create_task(self._run(), name=f"realtime-{call.call_connection_id}")

    async def receive(self, event: InboundEvent) -> None:
        if type(event) is AudioIn:
            for chunk in self._batcher.feed(event):
                await self._send_audio(chunk)
        elif isinstance(event, TranscriptIn) and self._config.turn_detection == "none":
            await self._acs_turn(event)
        elif isinstance(event, CallEventIn) and event.name == "CallTransferFailed":
            await self._transfer_failed(event)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._conversation is not None:
            await self._conversation.close()
        await self._connector.close()

    # --- the socket's life ------------------------------------------------------------------
    async def _run(self) -> None:
        try:
            await self._keep_connected()
        except Exception as exc:
            # The edge of the backend's task: a bug ends the media session visibly, not silently.
            log.exception("Realtime backend crashed", extra=self._log_extra())
            self._fail(f"internal error: {exc!r}")

    async def _keep_connected(self) -> None:
        conversation = self._conversation
        assert conversation is not None
        failures = 0
        while True:
            if failures:
                if failures >= self._reconnect.attempts:
                    self._fail(f"the Realtime service stayed unreachable ({failures} attempts)")
                    return
                await asyncio.sleep(self._reconnect.delay(failures))
            try:
                connection = await self._connector.connect()
            except RealtimeFatal as exc:
                self._fail(str(exc))
                return
            except RealtimeUnavailable as exc:
                failures += 1
                self._report_reconnect(failures, str(exc))
                continue
            self.connects += 1
            if self._output is not None:
                self._output.report(BackendEvent("connected", {"backend": self.name}))
            log.info(
                "%s socket open (model %s, connect %d)",
                self.name,
                self._connector.model,
                self.connects,
                extra=self._log_extra(),
            )
            try:
                outcome = await self._serve(connection, conversation)
            except SocketClosed as exc:
                outcome = "dropped"
                failures = 1 if self._session_live else failures + 1
                self._report_reconnect(failures, f"the Realtime socket closed: {exc}")
            except RealtimeFatal as exc:
                self._fail(str(exc))
                return
            finally:
                self._connection = None
                await _discard(connection)
            if outcome == "renew":
                failures = 0
                log.info("renewing the Realtime session", extra=self._log_extra())
            else:
                conversation.session_lost()

    async def _serve(
        self, connection: RealtimeSocket, conversation: Conversation
    ) -> SessionOutcome:
        conversation.new_session()
        self._session_live = False
        tools = self._tools.definitions()
        await connection.send(self._connector.session_update(self._instructions, tools, self._rate))
        for item in conversation.history.replay():
            await connection.send(item)
        # Audio kept while disconnected goes first; the socket is shared only once it is out.
        while self._pending:
            await connection.append(self._pending.popleft())
        self._connection = connection
        if not self._greeted:
            self._greeted = True
            for request in greeting_request(self._config, self._instructions):
                await connection.send(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._renew_deadline_s
        renewal = RenewalTimer(loop.time() + self._renew_after_s)
        try:
            return await self._read(connection, conversation, renewal, deadline)
        finally:
            renewal.cancel()

    async def _read(
        self,
        connection: RealtimeSocket,
        conversation: Conversation,
        renewal: RenewalTimer,
        deadline: float,
    ) -> SessionOutcome:
        loop = asyncio.get_running_loop()
        while True:
            event = await renewal.read(connection.recv)
            if event is None:
                # Renew between turns when possible, so nobody is cut off mid-sentence.
                if loop.time() >= deadline or conversation.quiet():
                    return "renew"
                renewal.postpone(min(loop.time() + RENEW_RETRY_S, deadline))
                continue
            if event.type == "session.created":
                self._session_live = True
            try:
                await conversation.handle(connection, event)
            except SessionExpired:
                return "renew"
            except (AttributeError, TypeError, ValueError) as exc:
                # A server event missing fields (version skew): skip it, keep the call going.
                log.warning("skipped a malformed Realtime event: %r", exc, extra=self._log_extra())

    # --- caller audio and turns -------------------------------------------------------------
    async def _send_audio(self, chunk: bytes) -> None:
        connection = self._connection
        if connection is None:
            self._pending.append(chunk)
            return
        try:
            await connection.append(chunk)
        except SocketClosed:
            self._pending.append(chunk)  # the session task sees the drop and reconnects
            return
        self.appends_sent += 1

    async def _acs_turn(self, event: TranscriptIn) -> None:
        """Turn detection off: ACS's own transcription says when the caller speaks and stops."""
        connection, conversation = self._connection, self._conversation
        if connection is None or conversation is None or not event.text.strip():
            return
        try:
            await conversation.barge_in(connection)
            if event.final:
                await connection.send({"type": "input_audio_buffer.commit"})
                await connection.send({"type": "response.create"})
        except SocketClosed:
            return  # the session task sees the drop and reconnects

    async def _transfer_failed(self, event: CallEventIn) -> None:
        """Tell the model, so the agent can say so rather than leave the caller waiting."""
        connection, conversation = self._connection, self._conversation
        if connection is None or conversation is None or conversation.tool_calls is None:
            return
        message = str(event.data.get("message") or "no reason given")
        try:
            await conversation.tool_calls.tell(connection, f"[the transfer failed: {message}]")
        except SocketClosed:
            return  # the session task sees the drop and reconnects

    # --- reporting ------------------------------------------------------------------------------
    def _report_reconnect(self, attempt: int, reason: str) -> None:
        log.warning(
            "Realtime socket unavailable (attempt %d): %s", attempt, reason, extra=self._log_extra()
        )
        if self._output is not None:
            data = {"backend": self.name, "attempt": attempt, "reason": reason}
            self._output.report(BackendEvent("reconnect", data))

    def _fail(self, reason: str) -> None:
        log.error("Realtime backend failed: %s", reason, extra=self._log_extra())
        if self._output is not None:
            data = {"backend": self.name, "message": reason, "fatal": True}
            self._output.report(BackendEvent("error", data))
            self._output.end(reason)

    def _log_extra(self) -> dict[str, str | None]:
        return log_fields(self._call)


async def _discard(connection: RealtimeSocket) -> None:
    with contextlib.suppress(SocketClosed, OSError, TimeoutError):
        async with asyncio.timeout(DISCARD_TIMEOUT_S):
            await connection.close()
