"""Fixtures for the Redis store and bus: stores on the test Redis (the suite's private one, see
`redis_url` in tests/conftest.py), throwaway Redis servers a test may stop and restart."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path

import pytest
from redis.asyncio import Redis

from app.calls.backoff import Backoff
from app.calls.redis_bus import RedisCallBus
from app.calls.redis_client import REDIS_ERRORS, redis_client
from app.calls.redis_store import RedisCallStore
from tests.conftest import redis_server_command

ENDED_TTL_S = 600
LIVE_TTL_S = 3600
FAST_BACKOFF = Backoff(initial_s=0.01, max_s=0.1)


async def eventually(check: Callable[[], Awaitable[bool]], timeout_s: float = 10.0) -> None:
    """Poll `check` until it holds; fail after `timeout_s` (generous: CI machines are slow)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout_s:g}s")


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


StoreFactory = Callable[..., Awaitable[RedisCallStore]]
BusFactory = Callable[..., Awaitable[RedisCallBus]]


@pytest.fixture
async def closing() -> AsyncIterator[AsyncExitStack]:
    """Closes what a test opened, in reverse order."""
    async with AsyncExitStack() as stack:
        yield stack


@pytest.fixture
def open_store(redis_url: str, redis_prefix: str, closing: AsyncExitStack) -> StoreFactory:
    """A new store (its own connection pool, as another instance would have) on the test prefix."""

    async def open_(url: str = redis_url, ended_ttl_s: int = ENDED_TTL_S) -> RedisCallStore:
        store = RedisCallStore(
            redis_client(url),
            key_prefix=redis_prefix,
            ended_ttl_s=ended_ttl_s,
            live_ttl_s=LIVE_TTL_S,
            release_backoff=FAST_BACKOFF,
        )
        closing.push_async_callback(store.close)
        return store

    return open_


@pytest.fixture
def open_bus(redis_url: str, redis_prefix: str, closing: AsyncExitStack) -> BusFactory:
    """A started bus for instance `instance_id`, on its own connections."""

    async def open_(instance_id: str, url: str = redis_url) -> RedisCallBus:
        bus = RedisCallBus(
            redis_client(url),
            key_prefix=redis_prefix,
            instance_id=instance_id,
            backoff=FAST_BACKOFF,
        )
        closing.push_async_callback(bus.close)
        await bus.start()
        return bus

    return open_


class RedisServer:
    """A throwaway `redis-server` on a fixed port, stopped and restarted by the test.

    It never snapshots by itself; `stop(keep_data=True)` saves to `directory` first, so the
    restarted server has the data (as after an Azure failover) instead of starting empty.
    """

    def __init__(self, port: int, directory: Path) -> None:
        self.port = port
        self.directory = directory
        self.url = f"redis://127.0.0.1:{port}/0"
        self._process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self._process = await asyncio.create_subprocess_exec(
            *redis_server_command(self.port, self.directory), stdout=asyncio.subprocess.DEVNULL
        )
        client = Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            await eventually(lambda: _answers(client))
        finally:
            await client.aclose()

    async def stop(self, keep_data: bool = False) -> None:
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        if keep_data:
            client = Redis.from_url(self.url)
            with contextlib.suppress(*REDIS_ERRORS):
                await client.shutdown(save=True)
            await client.aclose()
        else:
            process.terminate()
        await process.wait()


async def _answers(client: Redis) -> bool:
    try:
        return bool(await client.ping())
    except REDIS_ERRORS:
        return False


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    """A private Redis this test may stop and restart."""
    server = RedisServer(closed_port(), tmp_path)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def raw_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A plain client on the test Redis, to look at keys as Redis sees them."""
    client = Redis.from_url(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()
