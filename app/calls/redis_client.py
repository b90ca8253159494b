"""The Redis client the store and the call bus share the settings of, and the errors it raises."""

from __future__ import annotations

from urllib.parse import urlsplit

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

REDIS_ERRORS: tuple[type[Exception], ...] = (RedisError, OSError)
"""What a Redis call raises when the server is down, slow, failing over or refusing."""

CONNECT_TIMEOUT_S = 2.0
COMMAND_TIMEOUT_S = 5.0


def redis_client(url: str) -> Redis:
    """A client with its own connection pool that fails fast instead of hanging.

    redis-py's default (ten retries with backoff, 5 s connect timeout) would hold a caller for
    most of a minute while Redis is down; our callers have their own retry and backoff, so
    only one quick retry remains, enough to replace a pooled connection Redis closed.
    """
    return Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=CONNECT_TIMEOUT_S,
        socket_timeout=COMMAND_TIMEOUT_S,
        # Azure Cache for Redis drops connections idle for 10 minutes.
        health_check_interval=30,
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=1),
    )


def describe(url: str) -> str:
    """`host:port/db` of a Redis URL, without its password, for logs."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{db}"
