"""What each URL setting must look like, and refusals that say so without printing a secret.

`Settings` refuses a URL setting whose scheme or host cannot work (a `BACKEND_WS_URL` with no
scheme starts fine and leaves every call silent); the agent tools file checks its URLs the same
way. Messages quote the value without user, password, query and fragment (an Azure Functions
URL carries its key in `?code=`), or only its scheme for a secret setting (`REDIS_URL`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from urllib.parse import urlsplit

HTTP = ("https", "http")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})
JWKS_EXAMPLE = "https://host/path (http only from 127.0.0.1, ::1 or localhost: the emulator)"

# Each URL setting: the schemes it takes, what such a URL is called, and what one looks like.
SETTING_URLS: dict[str, tuple[tuple[str, ...], str, str]] = {
    "acs_endpoint": (HTTP, "an http(s) URL", "https://<resource>.communication.azure.com"),
    "public_base_url": (HTTP, "an http(s) URL", "https://<the host ACS reaches this service at>"),
    "backend_ws_url": (("ws", "wss"), "a WebSocket URL", "ws://host:port/path or wss://..."),
    # A ws(s) base URL is the OpenAI client's WebSocket URL itself (a proxy, a test server).
    "openai_base_url": ((*HTTP, "wss", "ws"), "an http(s) or ws(s) URL", "https://host/v1"),
    "azure_openai_endpoint": (HTTP, "an http(s) URL", "https://<resource>.openai.azure.com"),
    "azure_voicelive_endpoint": (
        HTTP,
        "an http(s) URL",
        "https://<resource>.services.ai.azure.com",
    ),
    "call_end_webhook_url": (HTTP, "an http(s) URL", "https://crm.example.com/acs-bridge/calls"),
    # http only from this machine (the emulator): `Settings` checks the host.
    "acs_jwks_url": (HTTP, "an https URL", JWKS_EXAMPLE),
    "redis_url": (
        ("redis", "rediss", "unix"),
        "a Redis URL",
        "redis://[:password@]host:6379/0, rediss://... (TLS) or unix:///path/to/redis.sock",
    ),
}
SECRET_URLS = frozenset({"redis_url"})


def url_problem(
    value: str, schemes: Collection[str], kind: str, example: str, *, secret: bool = False
) -> str | None:
    """Why `value` is not a URL of `schemes` with a host (a path for unix://); None if it is."""
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a port
    except ValueError:
        return f"{quoted_url(value, secret=secret)} has a bad host or port: use {example}"
    if "://" not in value or parts.scheme not in schemes:
        return f"{quoted_url(value, secret=secret)} is not {kind}: use {example}"
    what = "path" if parts.scheme == "unix" else "host"
    if not (parts.path.strip("/") if parts.scheme == "unix" else parts.hostname):
        return f"{quoted_url(value, secret=secret)} has no {what}: use {example}"
    return None


def quoted_url(value: str, *, secret: bool = False) -> str:
    """`value` quoted for a message: no user, password, query or fragment; only the scheme of
    a `secret` one (what follows it may be a password, e.g. in a connection string)."""
    scheme, sep, rest = re.split(r"[?#]", value, maxsplit=1)[0].partition("://")
    if not sep:
        scheme, rest = "", scheme
    if secret:
        return f"a value with scheme {scheme!r}" if sep else "a value with no scheme"
    return repr(scheme + sep + re.sub(r"^[^/]*@", "***@", rest))
