"""The Pipecat backend: each call runs `await run_bot(transport, call)`, the bot's own pipeline.

The bot builds its `Pipeline`, `PipelineWorker` and runner and runs them, as Pipecat's examples
do, on the call's `AcsTransport`. Its life, as the media session sees it:

- the pipeline starts: `connected` is reported, `on_client_connected` fires;
- the bot's pipeline ends on its own (an `EndFrame`): the bridge hangs up once what was queued
  has been heard, as Pipecat's telephony serializers do;
- the call's media is gone (`close`): `on_client_disconnected` fires, and a bot still running
  DISCONNECT_GRACE_S later is cancelled; nothing of it outlives the call;
- the bot raises: an `error` (fatal) is reported and the media session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from app.agent.runner import ToolRunner
from app.agent.tools import ToolConfig
from app.backends.base import (
    ActionFailed,
    AudioIn,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    TranscriptIn,
    log_fields,
)
from app.backends.pipecat.observer import CallObserver
from app.backends.pipecat.tools import CallTools
from app.backends.pipecat.transport import AcsTransport

log = logging.getLogger(__name__)

Bot = Callable[[AcsTransport, CallContext], Awaitable[Any]]

NAME = "pipecat"
DISCONNECT_GRACE_S = 2.0  # a bot's on_client_disconnected gets this long to end it itself
CLEANUP_TIMEOUT_S = 2.0


class PipecatBackend:
    """One bot run per call, on the call's `AcsTransport`."""

    def __init__(
        self,
        bot: Bot,
        *,
        tools: ToolConfig | None = None,
        http_client: httpx.AsyncClient | None = None,
        disconnect_grace_s: float = DISCONNECT_GRACE_S,
        sample_rate: int | None = None,
    ) -> None:
        self._bot = bot
        self._sample_rate = sample_rate
        self._tools = tools or ToolConfig()
        self._http_client = http_client
        self._grace_s = disconnect_grace_s
        self._call: CallContext | None = None
        self._output: MediaOutput | None = None
        self.transport: AcsTransport | None = None
        self._call_tools: CallTools | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def sample_rate(self) -> int | None:
        """The pipeline's rate both ways; None (user bots): the call's own, 16 or 24 kHz."""
        return self._sample_rate

    async def open(self, call: CallContext, output: MediaOutput, actions: CallActions) -> None:
        self._call, self._output = call, output
        runner = None
        if self._tools.tools:
            runner = ToolRunner(self._tools, call, actions, client=self._http_client)
        self._call_tools = CallTools(runner, output)
        transport = AcsTransport(
            call, output, actions, observer=CallObserver(output), sample_rate=self._sample_rate
        )
        transport.call_tools = self._call_tools
        transport.add_event_handler("on_client_connected", self._connected)
        self.transport = transport
        self._task = asyncio.create_task(self._run(), name=f"pipecat-{call.call_connection_id}")

    async def receive(self, event: InboundEvent) -> None:
        transport = self.transport
        if transport is None:
            return
        if type(event) is AudioIn:
            await transport.input().audio(event.pcm)
        elif isinstance(event, DtmfIn):
            await transport.input().dtmf(event.digit)
        elif isinstance(event, TranscriptIn):
            await transport.input().transcription(
                event.text, final=event.final, participant=event.participant_id
            )
        elif isinstance(event, CallEventIn) and event.name == "CallTransferFailed":
            # As the Realtime backends do: the agent can say so rather than leave the caller
            # waiting.
            reason = str(event.data.get("message") or "no reason given")
            await transport.input().note(f"[the transfer failed: {reason}]")

    async def close(self) -> None:
        if self._closing:
            return
        self._closing = True
        task, transport = self._task, self.transport
        if transport is not None and task is not None and not task.done():
            await transport.client_disconnected()
            await asyncio.wait({task}, timeout=self._grace_s)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if transport is not None:
            # The event handlers' tasks (on_client_disconnected among them).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(CLEANUP_TIMEOUT_S):
                    await transport.cleanup()  # type: ignore[no-untyped-call]
        if self._call_tools is not None:
            await self._call_tools.close()

    # --- the bot's run ---------------------------------------------------------------------
    async def _run(self) -> None:
        transport, call = self.transport, self._call
        if transport is None or call is None:
            return  # not opened
        try:
            await self._bot(transport, call)
        except Exception as exc:
            # The edge of the bot's task: a bot that raises ends the media visibly.
            log.exception("the Pipecat bot raised", extra=self._log_extra())
            self._fail(f"the Pipecat bot failed: {exc!r}")
            return
        if self._closing:
            return
        if transport.ended_by_pipeline:
            await self._hang_up_when_heard(transport)
            return
        log.warning(
            "the Pipecat bot returned but its pipeline never ended", extra=self._log_extra()
        )
        self._fail("the Pipecat bot returned without ending its pipeline")

    async def _hang_up_when_heard(self, transport: AcsTransport) -> None:
        await transport.audio.until_heard()
        try:
            await transport.actions.hang_up()
        except ActionFailed as exc:
            log.warning("could not hang up: %s", exc.message, extra=self._log_extra())
            self._fail(f"the bot ended but hanging up failed: {exc.message}")
            return
        log.info("the Pipecat bot ended the call", extra=self._log_extra())

    async def _connected(self, transport: AcsTransport, client: Any) -> None:
        if self._output is not None:
            self._output.report(BackendEvent("connected", {"backend": NAME}))

    def _fail(self, reason: str) -> None:
        log.error("Pipecat backend failed: %s", reason, extra=self._log_extra())
        if self._output is not None:
            self._output.report(
                BackendEvent("error", {"backend": NAME, "message": reason, "fatal": True})
            )
            self._output.end(reason)

    def _log_extra(self) -> dict[str, str | None]:
        return log_fields(self._call)
