"""The model's function calls, run beside the conversation and answered over the socket.

Each call runs in a task of its own, so the server events (a barge-in among them) and the
caller's audio keep flowing while a tool works. Its output is sent as a `function_call_output`
item as soon as it is ready, even after a barge-in; once the response that asked is done and
all its calls have answered, one `response.create` lets the model go on (deferred while
another response is in flight, which would refuse it). `end_call` answers at once, then waits
for the goodbye to be heard and hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from openai.types.realtime.conversation_item_create_event_param import (
    ConversationItemCreateEventParam,
)

from app.agent.runner import ToolResult, ToolRunner
from app.backends.base import ActionFailed, BackendEvent, MediaOutput
from app.backends.realtime.errors import SocketClosed
from app.backends.realtime.socket import RealtimeSocket

log = logging.getLogger(__name__)

END_CALL_PLAYOUT_TIMEOUT_S = 30.0  # the longest a goodbye may keep a finished call up
MAX_RUNNING = 8  # tool calls of one call at once; more are answered with an error, not run


@dataclass(slots=True)
class _Response:
    """The calls of one model response, in one session."""

    response_id: str
    connection: RealtimeSocket
    session: int
    pending: set[str] = field(default_factory=set)
    done: asyncio.Event = field(default_factory=asyncio.Event)
    ends_call: bool = False


class ToolCalls:
    """Runs one call's function calls and answers them to the model."""

    def __init__(
        self,
        runner: ToolRunner,
        output: MediaOutput,
        until_heard: Callable[[], Awaitable[None]],
        log_extra: Mapping[str, str | None],
    ) -> None:
        self.runner = runner
        self._output = output
        self._until_heard = until_heard
        self._log_extra = dict(log_extra)
        self._session = 0
        self._responses: dict[str, _Response] = {}
        self._seen: set[str] = set()
        self._in_flight: set[str] = set()
        self._continue_on: RealtimeSocket | None = None  # a deferred response.create
        self._ending = False
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def ending(self) -> bool:
        """end_call was called: the model is not asked to go on any more."""
        return self._ending

    def new_session(self) -> None:
        """A new session knows none of the old calls: their outputs can no longer be sent."""
        self._session += 1
        for response in self._responses.values():
            response.done.set()
        self._responses.clear()
        self._seen.clear()
        self._in_flight.clear()
        self._continue_on = None

    def response_created(self, response_id: str) -> None:
        self._in_flight.add(response_id)

    def requested(
        self,
        connection: RealtimeSocket,
        response_id: str,
        call_id: str | None,
        name: str,
        arguments: str,
    ) -> None:
        """The model asked for a call (seen once per call_id, whichever event told of it)."""
        if not call_id or call_id in self._seen:
            return
        self._seen.add(call_id)
        response = self._responses.get(response_id)
        if response is None:
            response = self._responses[response_id] = _Response(
                response_id, connection, self._session
            )
        response.pending.add(call_id)
        run = len(self._tasks) < MAX_RUNNING
        task = asyncio.create_task(
            self._run(response, call_id, name, arguments, run=run),
            name=f"realtime-tool-{name[:64]}",
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def response_done(self, connection: RealtimeSocket, response_id: str) -> None:
        """The response is over: continue once its calls have answered."""
        self._in_flight.discard(response_id)
        response = self._responses.get(response_id)
        if response is not None:
            response.done.set()
            await self._continue_if_answered(response)
        deferred = self._continue_on
        if deferred is not None and not self._in_flight:
            self._continue_on = None
            await self._ask_to_continue(deferred)

    async def tell(self, connection: RealtimeSocket, text: str) -> None:
        """A system note for the model (a failed transfer, say), and a response to it."""
        if self._ending:
            return
        await connection.send(
            {
                "type": "conversation.item.create",
                "item": {
                    "type": "message",
                    "role": "system",
                    "content": [{"type": "input_text", "text": text}],
                },
            }
        )
        await self._ask_to_continue(connection)

    async def close(self) -> None:
        """Cancel and await the calls still running."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.runner.close()

    async def _run(
        self, response: _Response, call_id: str, name: str, arguments: str, *, run: bool
    ) -> None:
        try:
            if run:
                result = await self.runner.run(name, arguments)
            else:
                result = self.runner.failed(name, arguments, "too many tool calls at once")
        except Exception:
            # The edge of the tool's task: a bug in a tool costs the model one answer, not the call.
            log.exception("tool %s crashed", name[:64], extra=self._log_extra)
            result = self.runner.failed(name, arguments, "the tool failed unexpectedly")
        self._output.report(result.event())
        if result.ends_call:
            self._ending = response.ends_call = True
        await self._send_output(response, call_id, result)
        response.pending.discard(call_id)
        if result.ends_call:
            await self._end_call(response)
        else:
            await self._continue_if_answered(response)

    async def _send_output(self, response: _Response, call_id: str, result: ToolResult) -> None:
        if response.session != self._session:
            log.info("a tool answered after its session ended", extra=self._log_extra)
            return
        event: ConversationItemCreateEventParam = {
            "type": "conversation.item.create",
            "item": {"type": "function_call_output", "call_id": call_id, "output": result.output},
        }
        with contextlib.suppress(SocketClosed):  # the session task sees the drop
            await response.connection.send(event)

    async def _continue_if_answered(self, response: _Response) -> None:
        if not response.done.is_set() or response.pending or response.ends_call:
            return
        if self._responses.get(response.response_id) is not response:
            return  # already continued, or its session is gone
        del self._responses[response.response_id]
        await self._ask_to_continue(response.connection)

    async def _ask_to_continue(self, connection: RealtimeSocket) -> None:
        if self._ending:
            return
        if self._in_flight:
            self._continue_on = connection  # sent when the response in flight is done
            return
        with contextlib.suppress(SocketClosed):
            await connection.send({"type": "response.create"})

    async def _end_call(self, response: _Response) -> None:
        # The goodbye is usually in the response that called end_call: let it be generated
        # and heard, within a bound, so a stuck response cannot keep the call up.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(END_CALL_PLAYOUT_TIMEOUT_S):
                await response.done.wait()
                await self._until_heard()
        try:
            await self.runner.hang_up()
        except ActionFailed as exc:
            log.warning("end_call could not hang up: %s", exc.message, extra=self._log_extra)
            data = {"message": f"end_call could not hang up: {exc.message}", "fatal": False}
            self._output.report(BackendEvent("error", data))
            # The call is still up: let the agent carry on rather than fall silent.
            self._ending = False
            if response.session == self._session:
                with contextlib.suppress(SocketClosed):
                    await self.tell(response.connection, f"[hanging up failed: {exc.message}]")
            return
        log.info("the agent hung up the call", extra=self._log_extra)
