"""A pure ASGI middleware counting HTTP requests by method, route template and status.

Labels use the matched route's path template (`/api/calls/{call_connection_id}`), never the raw
path, so a scanner or a million call ids cannot grow the label set. WebSocket and lifespan scopes
pass through untouched: the media socket's cost stays where it was.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability.metrics import Metrics

UNMATCHED_ROUTE = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class HttpMetricsMiddleware:
    """Count every HTTP request into the app's `Metrics` (`app.state.services.metrics`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        metrics = _metrics_of(scope)
        if metrics is None:  # the lifespan has not built the services (yet)
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        event_stream = False

        async def observed_send(message: Message) -> None:
            nonlocal status, event_stream
            if message["type"] == "http.response.start":
                status = int(message["status"])
                event_stream = _is_event_stream(message.get("headers", ()))
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        except Exception:
            # Unhandled: the outermost error middleware answers 500 after we re-raise.
            status = status if status is not None else 500
            raise
        finally:
            if status is not None:
                # A stream's duration is how long the client watched: not a latency.
                elapsed = None if event_stream else time.perf_counter() - started
                metrics.observe_http(_method(scope), route_template(scope), status, elapsed)


def route_template(scope: Scope) -> str:
    """The path template of the route that handled `scope`, or `unmatched`."""
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    return template if isinstance(template, str) and template else UNMATCHED_ROUTE


def _metrics_of(scope: Scope) -> Metrics | None:
    app = scope.get("app")
    services = getattr(getattr(app, "state", None), "services", None)
    metrics = getattr(services, "metrics", None)
    return metrics if isinstance(metrics, Metrics) else None


def _method(scope: Scope) -> str:
    method = str(scope.get("method", "GET")).upper()
    return method if method in _METHODS else "OTHER"


def _is_event_stream(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    for name, value in headers:
        if name.lower() == b"content-type":
            return value.startswith(b"text/event-stream")
    return False
