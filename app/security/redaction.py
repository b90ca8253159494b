"""Keeping secrets out of logs: a `logging.Filter` that masks credentials in emitted records.

Attach it to handlers (`install_log_redaction`), not loggers: a logger's filters skip records
propagated from its children, a handler's see them all, and only records that pass the level
check reach a handler, so the cost is paid per emitted line only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

MASK = "***"

_NAME_VALUE = re.compile(
    # name=value / name: value / "name": "value", for names that always carry a secret.
    r"""(?ix)
    (\b(?:access_?key|shared_?access_?key|account_?key|password|pwd|client_?secret
        |api[-_]?key|x-api-key|aeg-sas-key|ocp-apim-subscription-key|incoming_?call_?context
        |signature|secret|token|access_token|refresh_token)\b
     ["']?\s*[:=]\s*["']?)
    [^\s"',;&}]+
    """
)
_AUTHORIZATION = re.compile(
    # The whole header value with its scheme (Bearer, HMAC-SHA256 SignedHeaders=..&Signature=..).
    r"""(?i)(\bauthorization["']?\s*[:=]\s*)(["']?)([^"'\r\n]*)"""
)
_QUERY_SECRET = re.compile(
    # Query parameters that carry secrets in URLs (`?code=` is the Event Grid webhook secret);
    # only in query form, so a log's "code: 8603" stays readable.
    r"(?i)([?&](?:code|sig|key|secret|token|api-key|apikey)=)[^&\s\"'#]+"
)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
_OPENAI_KEY = re.compile(r"\bsk-[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """`text` with every recognisable secret replaced by `***`."""
    text = _AUTHORIZATION.sub(lambda m: f"{m.group(1)}{m.group(2)}{MASK}", text)
    text = _NAME_VALUE.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _QUERY_SECRET.sub(lambda m: f"{m.group(1)}{MASK}", text)
    text = _JWT.sub(MASK, text)
    return _OPENAI_KEY.sub(MASK, text)


class SecretRedactionFilter(logging.Filter):
    """Rewrites each record's message (and formatted traceback) with secrets masked."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg = redacted
            record.args = None
        if record.exc_info and not record.exc_text:
            # Formatters reuse a cached exc_text: fill it in, masked, before they get there.
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def install_log_redaction(handlers: Iterable[logging.Handler] | None = None) -> None:
    """Add one `SecretRedactionFilter` to each handler (default: the root logger's handlers)."""
    targets = list(handlers) if handlers is not None else logging.getLogger().handlers
    for handler in targets:
        if not any(isinstance(f, SecretRedactionFilter) for f in handler.filters):
            handler.addFilter(SecretRedactionFilter())
