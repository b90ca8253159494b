"""HTTP errors: one exception type with a status, and handlers that always answer JSON.

ApiError                 any error answered with `status` and `{"error": {code, message}}`
CallControlError         ACS, or the call's state, refused or failed -> its `status` and `code`
CallBusError             the call's media owner is gone (409), silent (504) or refused (409)
StoreUnavailable         a shared call store (Redis) is unreachable -> 503 + Retry-After, saying
                         which store and why (`store unreachable: host:port: reason`)
RequestValidationError   (FastAPI) -> 400 with the offending fields
Exception                (anything else) -> 500 with no internals
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.calls.call_bus import CallBusError, CommandFailed, CommandTimeout, NoMediaOwner
from app.calls.control import CallControlError
from app.calls.store import StoreUnavailable
from app.errors import error_body

log = logging.getLogger(__name__)


class ApiError(Exception):
    """An error with an HTTP status, a stable machine code and a human message."""

    def __init__(self, status: int, code: str, message: str, **detail: Any) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail


def install(app: FastAPI) -> None:
    """Register the JSON error handlers on `app`."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, exc.message, **exc.detail), status_code=exc.status)

    @app.exception_handler(CallControlError)
    async def _acs_error(request: Request, exc: CallControlError) -> JSONResponse:
        return JSONResponse(error_body(exc.code, str(exc)), status_code=exc.status)

    @app.exception_handler(CallBusError)
    async def _bus_error(request: Request, exc: CallBusError) -> JSONResponse:
        status, code, message = _bus_answer(exc)
        return JSONResponse(error_body(code, message), status_code=status)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))} for e in exc.errors()
        ]
        return JSONResponse(
            error_body("invalid_request", "the request is not valid", errors=errors),
            status_code=400,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            error_body(f"http_{exc.status_code}", str(exc.detail)),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(StoreUnavailable)
    async def _store_down(request: Request, exc: StoreUnavailable) -> JSONResponse:
        return JSONResponse(
            # The store's words name its address and the reason, never its password: an
            # operator reading a refused webhook (a failed test call) learns it is Redis.
            error_body("store_unavailable", f"{exc}; retry shortly"),
            status_code=503,
            headers={"Retry-After": "2"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("internal_error", "internal server error"), status_code=500)


def _bus_answer(exc: CallBusError) -> tuple[int, str, str]:
    # Fixed messages: the bus's own name calls and timeouts, detail callers have no use for.
    if isinstance(exc, NoMediaOwner):
        return 409, "no_media_socket", "no instance holds the call's media"
    if isinstance(exc, CommandTimeout):
        return 504, "media_owner_timeout", "the media owner did not answer"
    if isinstance(exc, CommandFailed):
        return 409, exc.code, str(exc)
    return 502, "media_owner_error", "the media owner failed"
