"""The downstream's requests to the `websocket` backend, answered in the order they came.

The backend's reader parses each text frame and hands what needs an answer to an
`ActionQueue` without waiting for ACS: a call action to perform, or the refusal of a malformed
message. One worker task performs the actions one at a time and sends every answer, refusals
included, in the order the messages came, on the connection that sent them: a slow ACS
request never stalls the downstream's audio, and answers never overtake each other.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from app.backends.base import ActionFailed, CallActions
from app.backends.websocket_messages import ActionRequest, MalformedMessage, action_result

log = logging.getLogger(__name__)

QUEUED_ACTIONS = 8  # more waiting than this and the downstream is told to slow down
# Messages read but not yet answered: with this many, the reader waits until the oldest is
# answered (answers are never dropped, so they must be bounded somewhere).
QUEUED_ANSWERS = 64
ACTIONS_GRACE_S = 2.0  # how long `close` lets queued actions finish (a transfer, then `end`)

_Entry = tuple[ActionRequest | dict[str, Any], ClientConnection]


class ActionQueue:
    """One call's downstream requests: performed one at a time, answered in order."""

    def __init__(self, actions: CallActions) -> None:
        self._actions = actions
        self._entries: asyncio.Queue[_Entry] = asyncio.Queue(QUEUED_ANSWERS)
        self._waiting = 0  # actions queued and not yet started
        self._worker = asyncio.create_task(self._answer_in_order())

    async def submit(self, request: ActionRequest, socket: ClientConnection) -> None:
        """Perform `request` in its turn (or refuse it if too many actions wait already)."""
        if self._waiting >= QUEUED_ACTIONS:
            refusal = MalformedMessage(
                "too_many_actions",
                f"{QUEUED_ACTIONS} actions are already waiting; wait for their results",
                action=request.action,
                request_id=request.id,
            )
            await self.refuse(refusal, socket)
            return
        self._waiting += 1
        await self._entries.put((request, socket))

    async def refuse(self, refusal: MalformedMessage, socket: ClientConnection) -> None:
        """Answer `refusal` in its turn; waits only while QUEUED_ANSWERS answers wait."""
        await self._entries.put((refusal.result(), socket))

    async def close(self) -> None:
        """Let what is queued finish for up to ACTIONS_GRACE_S, then stop the worker."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(ACTIONS_GRACE_S):
                await self._entries.join()
        self._worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._worker

    async def _answer_in_order(self) -> None:
        while True:
            entry, socket = await self._entries.get()
            try:
                if isinstance(entry, ActionRequest):
                    self._waiting -= 1
                    answer = await self._perform(entry)
                else:
                    answer = entry
                try:
                    await socket.send(json.dumps(answer))
                except ConnectionClosed:
                    log.info("an answer (%s) was lost with its connection", answer["action"])
            finally:
                self._entries.task_done()

    async def _perform(self, request: ActionRequest) -> dict[str, Any]:
        actions = self._actions
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
