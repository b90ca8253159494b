"""Failures of the Realtime backend, and how the service's `error` events are read.

    RealtimeError
    ├── RealtimeFatal          retrying cannot help: bad key, no Entra token, quota, no model
    ├── RealtimeUnavailable    the socket could not be opened now: refused, timeout, 429, 5xx
    ├── SocketClosed           an open socket closed or dropped: reconnect
    └── SessionExpired         the service ended the session at its duration cap

The backend reports a fatal one and ends the media session, retries an unavailable one with
backoff, and opens a new session (replaying the conversation) when one expires.
"""

from __future__ import annotations

from typing import Literal

# Error codes that no reconnect can fix.
FATAL_CODES = frozenset(
    {
        "invalid_api_key",
        "insufficient_quota",
        "account_deactivated",
        "billing_hard_limit_reached",
        "model_not_found",
        "deployment_not_found",
        "unauthorized",
        "forbidden",
    }
)
# Races between the caller, the service's own VAD and our barge-in: expected, not errors.
BENIGN_CODES = frozenset(
    {
        "response_cancel_not_active",
        "conversation_already_has_active_response",
        "input_audio_buffer_commit_empty",
    }
)
# The service's duration cap: the session ends; open a new one like any renewal.
EXPIRED_CODES = frozenset({"session_expired"})
# Client events that can race the service (truncate, cancel) carry ids with this prefix, so an
# error about them is recognised whatever its code.
RACE_EVENT_PREFIX = "bargein-"

ErrorVerdict = Literal["fatal", "benign", "expired", "error"]


class RealtimeError(Exception):
    """The Realtime backend failed."""


class RealtimeFatal(RealtimeError):
    """A failure retrying cannot fix (credentials, quota, configuration)."""


class RealtimeUnavailable(RealtimeError):
    """The service could not be reached or refused for now; retry with backoff."""


class SocketClosed(RealtimeError):
    """The socket closed under the conversation (a drop, or the service closed it)."""


class SessionExpired(RealtimeError):
    """The service ended the session (its duration cap): open a new one."""


def classify_error(code: str | None, error_type: str | None, event_id: str | None) -> ErrorVerdict:
    """How to treat an `error` event from the service."""
    if event_id is not None and event_id.startswith(RACE_EVENT_PREFIX):
        return "benign"
    if code in BENIGN_CODES:
        return "benign"
    if code in EXPIRED_CODES:
        return "expired"
    if code in FATAL_CODES or error_type in ("authentication_error", "permission_error"):
        return "fatal"
    return "error"
