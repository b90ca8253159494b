"""The Redis client the store and the call bus share the settings of, and the errors it raises."""

from __future__ import annotations

import os
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


def address(redis: Redis) -> str:
    """`host:port` (or the socket path) a client connects to, for messages: never a password."""
    kwargs = redis.connection_pool.connection_kwargs
    if kwargs.get("path"):
        return f"unix:{kwargs['path']}"
    host = str(kwargs.get("host") or "localhost")
    return f"{f'[{host}]' if ':' in host else host}:{kwargs.get('port') or 6379}"


def unreachable_reason(exc: BaseException) -> str:
    """What went wrong talking to Redis, in a few words: the socket's error when there is one
    ("Connection refused", not redis-py's "Error 111 connecting to host:port. ..."), else
    redis-py's text."""
    cause = exc if isinstance(exc, OSError) else (exc.__cause__ or exc.__context__)
    if isinstance(cause, TimeoutError):
        return "no answer in time"
    if isinstance(cause, OSError) and cause.errno:
        # getaddrinfo's errors are negative: their text is in strerror.
        return os.strerror(cause.errno) if cause.errno > 0 else str(cause.strerror)
    return str(exc).strip().rstrip(".") or type(exc).__name__


def describe(url: str) -> str:
    """`host:port/db` of a Redis URL, without its password, for logs."""
    parts = urlsplit(url)
    db = parts.path.lstrip("/") or "0"
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 6379}/{db}"
