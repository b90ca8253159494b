"""How the `websocket` backend opens its downstream connection, and says why it has none.

The reasons are for people (the call's record, the logs): they name the address (host and
port only: a URL's path or query may carry a credential) and what went wrong, and never carry
the connection's headers.
"""

from __future__ import annotations

import logging
import socket as sockets
import ssl
from urllib.parse import urlsplit

from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus
from websockets.frames import Close


class NoRedirects(connect):
    """`connect`, refusing redirects: a followed redirect would carry the Authorization header
    (the downstream's token) to wherever it points, another origin included."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        return exc


class QuietLogger(logging.LoggerAdapter[logging.Logger]):
    """A logger that is never enabled for DEBUG: websockets logs each handshake header there."""

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's name)
        return level > logging.DEBUG and self.logger.isEnabledFor(level)


def address_of(url: str) -> str:
    """`host:port` of a ws:// or wss:// URL, for reasons and logs (the rest may be secret)."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
    except ValueError:
        return "an invalid address"
    host = parts.hostname or "?"
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def connect_failure(exc: BaseException, address: str, timeout: float) -> str:
    """Why one connect attempt to `address` failed, in words."""
    if isinstance(exc, InvalidStatus):
        return f"handshake answered {exc.response.status_code}"
    if isinstance(exc, InvalidHandshake):
        return f"handshake failed: {exc}"
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s: {address}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused: {address}"
    if isinstance(exc, sockets.gaierror):
        return f"cannot resolve {address}: {exc.strerror}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}: {address}"
    if isinstance(exc, OSError):
        return f"{exc.strerror or type(exc).__name__}: {address}"
    return f"{type(exc).__name__}: {address}"


def closed_reason(close: Close | None, address: str) -> str:
    """Why an open connection ended: the downstream's close frame, or none."""
    if close is None:
        return f"connection to {address} lost (no close frame)"
    reason = f" ({close.reason})" if close.reason else ""
    return f"downstream closed the connection with {close.code}{reason}"
