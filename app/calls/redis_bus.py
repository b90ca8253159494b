"""The call bus on Redis pub/sub, so a command reaches whichever instance holds the socket.

Channels (under `key_prefix`):
    callbus:{call_id}                   the owner of the call's media socket listens here
    callbus:reply:{instance}:{random}   each bus's replies

A requester publishes a `BusRequest` on the call's channel; PUBLISH counting no listener means
no instance holds the socket, so the requester fails at once instead of waiting out the
timeout. The owner runs its handler in a task and publishes a `BusReply` on `reply_to`.

The subscriptions live on one `ChannelListener` connection that resubscribes after an outage,
so a call served while Redis was away gets its commands once it returns. A request waiting
when the connection drops fails with `StoreUnavailable`. Redis Cluster is not supported
(PUBLISH counts the listeners of one shard only).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import uuid
from collections.abc import AsyncIterator, Collection, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from redis.asyncio import Redis

from app.calls.backoff import Backoff
from app.calls.call_bus import (
    DEFAULT_TIMEOUT_S,
    BusCommand,
    BusReply,
    CommandHandler,
    CommandReply,
    CommandTimeout,
    NoMediaOwner,
    run_handler,
)
from app.calls.redis_client import REDIS_ERRORS, address, unreachable_reason
from app.calls.redis_listener import ChannelListener
from app.calls.store import StoreUnavailable

log = logging.getLogger(__name__)

RECONNECT_BACKOFF = Backoff(initial_s=0.05, max_s=2.0)


class BusRequest(BaseModel):
    """A command on the wire."""

    model_config = ConfigDict(frozen=True)

    id: str
    command: str
    args: dict[str, Any] = Field(default_factory=dict)
    reply_to: str
    sender: str
    timeout_s: float = Field(gt=0, le=300)


class RedisCallBus:
    """`CallBus` across instances; owns its Redis client and closes it."""

    def __init__(
        self,
        redis: Redis,
        *,
        key_prefix: str,
        instance_id: str,
        backoff: Backoff = RECONNECT_BACKOFF,
    ) -> None:
        self._redis = redis
        self._channel_prefix = f"{key_prefix}callbus:"
        self._reply_prefix = f"{key_prefix}callbus:reply:"
        self._reply_channel = f"{self._reply_prefix}{instance_id}:{uuid.uuid4().hex}"
        self._instance_id = instance_id
        self._listener = ChannelListener(redis, self._on_message, self._on_lost, backoff)
        self._handlers: dict[str, list[CommandHandler]] = {}
        self._waiting: dict[str, asyncio.Future[BusReply]] = {}
        self._running: dict[str, set[asyncio.Task[None]]] = {}

    async def start(self) -> None:
        """Start listening; waits briefly for Redis but never fails (it reconnects later)."""
        await self._listener.start([self._reply_channel])

    @contextlib.asynccontextmanager
    async def serve(self, call_connection_id: str, handler: CommandHandler) -> AsyncIterator[None]:
        handlers = self._handlers.setdefault(call_connection_id, [])
        handlers.append(handler)
        channel = self._channel_prefix + call_connection_id
        try:
            if len(handlers) == 1:
                await self._listener.add(channel)
            yield
        finally:
            handlers.remove(handler)
            if not handlers:
                del self._handlers[call_connection_id]
                await self._stop_commands(call_connection_id)
                await self._listener.remove(channel)

    async def request(
        self,
        call_connection_id: str,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
    ) -> CommandReply:
        if not self._listener.is_subscribed(self._reply_channel):
            raise StoreUnavailable(
                f"store unreachable: {address(self._redis)}: the call bus is not subscribed"
            )
        message = BusRequest(
            id=uuid.uuid4().hex,
            command=command,
            args=dict(args or {}),
            reply_to=self._reply_channel,
            sender=self._instance_id,
            timeout_s=timeout_s,
        )
        future: asyncio.Future[BusReply] = asyncio.get_running_loop().create_future()
        self._waiting[message.id] = future
        try:
            channel = self._channel_prefix + call_connection_id
            try:
                listeners = await self._redis.publish(channel, message.model_dump_json())
            except REDIS_ERRORS as exc:
                raise StoreUnavailable(self._unreachable(exc)) from exc
            if not listeners:
                raise NoMediaOwner(f"no media socket holds call {call_connection_id}")
            try:
                async with asyncio.timeout(timeout_s):
                    reply = await future
            except TimeoutError:
                raise CommandTimeout(f"{command}: no answer in {timeout_s:g}s") from None
        finally:
            self._waiting.pop(message.id, None)
        return reply.unwrap()

    def _unreachable(self, exc: BaseException) -> str:
        return f"store unreachable: {address(self._redis)}: {unreachable_reason(exc)}"

    async def held(self, call_connection_ids: Collection[str]) -> set[str]:
        ids = list(call_connection_ids)
        if not ids:
            return set()
        try:
            counts = await self._redis.pubsub_numsub(*(self._channel_prefix + c for c in ids))
        except REDIS_ERRORS as exc:
            raise StoreUnavailable(self._unreachable(exc)) from exc
        return {call_id for call_id, (_, n) in zip(ids, counts, strict=True) if int(n) > 0}

    async def close(self) -> None:
        await self._listener.close()
        for call_id in list(self._running):
            await self._stop_commands(call_id)
        self._handlers.clear()
        self._on_lost()
        with contextlib.suppress(*REDIS_ERRORS):
            await self._redis.aclose()

    # --- messages ---------------------------------------------------------------------------
    def _on_message(self, channel: str, data: str) -> None:
        if channel == self._reply_channel:
            self._on_reply(data)
        elif channel.startswith(self._channel_prefix):
            self._on_request(channel.removeprefix(self._channel_prefix), data)

    def _on_lost(self) -> None:
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(
                    StoreUnavailable(f"store unreachable: {address(self._redis)}: connection lost")
                )

    def _on_reply(self, data: str) -> None:
        try:
            reply = BusReply.model_validate_json(data)
        except ValidationError:
            log.warning("call bus: ignored a malformed reply")
            return
        future = self._waiting.get(reply.id)
        if future is not None and not future.done():
            future.set_result(reply)

    def _on_request(self, call_id: str, data: str) -> None:
        try:
            request = BusRequest.model_validate_json(data)
        except ValidationError:
            log.warning("call bus: ignored a malformed command for call %s", call_id)
            return
        if not request.reply_to.startswith(self._reply_prefix):
            log.warning("call bus: ignored a command with a foreign reply channel")
            return
        task = asyncio.create_task(self._answer(call_id, request))
        self._running.setdefault(call_id, set()).add(task)
        task.add_done_callback(functools.partial(self._forget, call_id))

    async def _answer(self, call_id: str, request: BusRequest) -> None:
        handlers = self._handlers.get(call_id)
        if handlers:
            command = BusCommand(call_id, request.command, request.args)
            reply = await run_handler(
                handlers[-1], command, request.id, self._instance_id, request.timeout_s
            )
        else:
            # The socket went between the publish and now: say so rather than stay silent.
            reply = BusReply(
                id=request.id,
                instance_id=self._instance_id,
                ok=False,
                error_code="not_owner",
                error_message=f"call {call_id} is no longer served here",
            )
        try:
            await self._redis.publish(request.reply_to, reply.model_dump_json())
        except REDIS_ERRORS as exc:
            log.warning("call bus: reply to %s lost (%s)", request.command, exc)

    def _forget(self, call_id: str, task: asyncio.Task[None]) -> None:
        running = self._running.get(call_id)
        if running is not None:
            running.discard(task)
            if not running:
                del self._running[call_id]

    async def _stop_commands(self, call_id: str) -> None:
        tasks = self._running.pop(call_id, set())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
