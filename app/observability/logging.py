"""Log output: JSON lines (LOG_FORMAT=json) or readable text, with the call's ids on every line.

`bind_call(call_connection_id, correlation_id)` sets the ids in a context variable; asyncio
copies it into every task created inside the block, so the lines a call's tasks emit carry them
without passing anything around. `extra={"call_connection_id": ...}` still wins when given.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from app.security.redaction import SecretRedactionFilter
from app.settings import Settings

UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# Logs every request's headers at INFO: only wanted when debugging.
_CHATTY_LOGGERS = ("azure.core.pipeline.policies.http_logging_policy",)
CONTEXT_FIELDS = ("call_connection_id", "correlation_id", "instance_id")
# Attributes every LogRecord has; anything else on a record came from `extra=`. uvicorn adds
# `color_message` (the same message with ANSI colours) to its own lines.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime", "taskName", "color_message", *CONTEXT_FIELDS}
)


@dataclass(frozen=True, slots=True)
class CallIds:
    call_connection_id: str
    correlation_id: str | None = None
    agent: str | None = None


_current_call: ContextVar[CallIds | None] = ContextVar("acs_bridge_call", default=None)


@contextmanager
def bind_call(
    call_connection_id: str, correlation_id: str | None = None, agent: str | None = None
) -> Iterator[CallIds]:
    """Within the block (and tasks started in it), log lines carry these call ids (and the
    call's agent, as an extra field, when given)."""
    ids = CallIds(call_connection_id, correlation_id, agent)
    token = _current_call.set(ids)
    try:
        yield ids
    finally:
        _current_call.reset(token)


def current_call() -> CallIds | None:
    """The ids bound by the innermost `bind_call`, if any."""
    return _current_call.get()


class CallContextFilter(logging.Filter):
    """Stamps each record with the bound call ids and the instance id (unless `extra=` did)."""

    def __init__(self, instance_id: str | None = None) -> None:
        super().__init__()
        self.instance_id = instance_id

    def filter(self, record: logging.LogRecord) -> bool:
        ids = _current_call.get()
        fields = record.__dict__
        if "call_connection_id" not in fields:
            record.call_connection_id = ids.call_connection_id if ids else None
        if "correlation_id" not in fields:
            record.correlation_id = ids.correlation_id if ids else None
        if "instance_id" not in fields:
            record.instance_id = self.instance_id
        if ids is not None and ids.agent is not None and "agent" not in fields:
            record.agent = ids.agent
        return True


class UvicornInvalidUtf8Filter(logging.Filter):
    """Drops uvicorn's ERROR traceback for a WebSocket text frame that is not UTF-8.

    uvicorn decodes text frames itself and logs each bad one with a traceback before closing
    the socket with 1007, so a peer could flood the log; the media session logs one warning
    line with the call id instead, when the 1007 close reaches it.
    """

    MESSAGE = "Invalid UTF-8 sequence received from client."

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.msg == self.MESSAGE
            and record.exc_info is not None
            and isinstance(record.exc_info[1], UnicodeDecodeError)
        )


_INVALID_UTF8_FILTER = UvicornInvalidUtf8Filter()
# On the logger, not a handler, and at import: it must hold under any log config, also when
# `configure_logging` never runs (`uvicorn app.main:app`); `addFilter` ignores a repeat.
logging.getLogger("uvicorn.error").addFilter(_INVALID_UTF8_FILTER)


def configure_logging(settings: Settings, stream: TextIO | None = None) -> logging.Handler:
    """Send every log line (uvicorn's too) to one handler on `stream` (stderr); idempotent."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _BridgeHandler)]:
        root.removeHandler(handler)
        handler.close()
    handler = _BridgeHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    # Context first: redaction then sees the final record.
    handler.addFilter(CallContextFilter(settings.instance_id))
    handler.addFilter(SecretRedactionFilter())
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in UVICORN_LOGGERS:
        # uvicorn's own handlers would print a second, differently shaped line.
        uvicorn_logger = logging.getLogger(name)
        for own in list(uvicorn_logger.handlers):
            uvicorn_logger.removeHandler(own)
        uvicorn_logger.propagate = True
        uvicorn_logger.setLevel(logging.NOTSET)
    for name in _CHATTY_LOGGERS:
        chatty = logging.DEBUG if settings.log_level == "DEBUG" else logging.WARNING
        logging.getLogger(name).setLevel(chatty)
    return handler


class _BridgeHandler(logging.StreamHandler[TextIO]):
    """The handler `configure_logging` installs (found again by type on a second call)."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: timestamp, level, logger, message, call ids, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for field in CONTEXT_FIELDS:
            value = getattr(record, field, None)
            if value is not None:
                entry[field] = value
        entry.update(extras(record))
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """`2025-01-01 12:00:00.123 INFO    app.media.session [call=.. corr=..] message key=value`."""

    def __init__(self) -> None:
        super().__init__(datefmt="%Y-%m-%d %H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        when = f"{self.formatTime(record, self.datefmt)}.{int(record.msecs):03d}"
        line = f"{when} {record.levelname:<7} {record.name} {_call_tag(record)}{record.message}"
        extra = extras(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line += "\n" + record.exc_text
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


def extras(record: logging.LogRecord) -> dict[str, Any]:
    """The fields a caller added with `extra=` (call ids and private names left out)."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRS and not key.startswith("_")
    }


def _call_tag(record: logging.LogRecord) -> str:
    call = getattr(record, "call_connection_id", None)
    if call is None:
        return ""
    corr = getattr(record, "correlation_id", None)
    return f"[call={call} corr={corr}] " if corr else f"[call={call}] "


def _timestamp(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
