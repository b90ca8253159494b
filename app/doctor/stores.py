"""Redis, when configured: it answers, with the credentials in REDIS_URL."""

from __future__ import annotations

from redis.exceptions import AuthenticationError, AuthorizationError, ResponseError

from app.calls.redis_client import REDIS_ERRORS, describe, redis_client
from app.doctor.report import CheckResult, failed, passed, skipped
from app.settings import Settings


async def check_redis(settings: Settings) -> CheckResult:
    """`redis`: PING with REDIS_URL's credentials."""
    name = "redis"
    if settings.redis_url is None:
        return skipped(name, "REDIS_URL unset: call state in memory (one instance)")
    url = settings.redis_url.get_secret_value()
    where = describe(url)
    client = redis_client(url)
    try:
        await client.ping()
    except (AuthenticationError, AuthorizationError) as exc:
        return failed(
            name,
            f"Redis at {where} refused the credentials: {exc}",
            "put the access key in REDIS_URL: rediss://:<access key>@<name>.redis.cache."
            "windows.net:6380/0",
        )
    except ResponseError as exc:
        if "NOAUTH" in str(exc):
            return failed(
                name,
                f"Redis at {where} needs a password: {exc}",
                "put the password in REDIS_URL: redis://:<password>@host:6379/0",
            )
        return failed(name, f"Redis at {where} answered an error: {exc}", "check REDIS_URL")
    except REDIS_ERRORS as exc:
        return failed(
            name,
            f"Redis at {where} does not answer: {exc}",
            "check REDIS_URL's host and port, the firewall, and that Redis runs "
            "(Azure Cache for Redis: port 6380 with rediss://)",
        )
    finally:
        await client.aclose()
    return passed(name, f"Redis at {where} answers PING")
