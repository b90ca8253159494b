"""FastAPI dependencies that guard the routes, and the one place security errors become HTTP.

A check whose setting is unset (`Security` field None) lets everything through: development only,
`app.security.startup.check_secure_configuration` refuses that in production.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, FastAPI, Request, WebSocket
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import HTTPConnection

from app.errors import error_body
from app.security.acs_tokens import Claims
from app.security.errors import InvalidToken, KeySetUnavailable, SecurityError
from app.security.service import Security

RETRY_AFTER_S = 10


class AuthRejected(StarletteHTTPException):
    """A security failure as an HTTP answer (401, or 503 when the signing keys are unreachable).

    Subclassing Starlette's HTTPException keeps the status and headers even where `install` was
    not called; `install` adds the `{"error": {"code": ..., "message": reason}}` body.
    """

    def __init__(self, error: SecurityError) -> None:
        self.code, status, headers = _http_form(error)
        self.reason = error.reason
        super().__init__(status_code=status, detail=error.reason, headers=headers)


def install(app: FastAPI) -> None:
    """Answer `AuthRejected` with the app's JSON error body."""

    @app.exception_handler(AuthRejected)
    async def _rejected(request: Request, exc: AuthRejected) -> JSONResponse:
        return rejection_response(exc)


def rejection_response(exc: AuthRejected) -> JSONResponse:
    """The JSON answer to a rejected request (also the WebSocket denial response)."""
    return JSONResponse(
        error_body(exc.code, exc.reason), status_code=exc.status_code, headers=exc.headers
    )


def get_security(connection: HTTPConnection) -> Security:
    """The app's `Security`, from the services the lifespan built."""
    security: Security = connection.app.state.services.security
    return security


SecurityDep = Annotated[Security, Depends(get_security)]


async def require_acs_token(request: Request, security: SecurityDep) -> Claims | None:
    """Callbacks: the verified ACS token's claims (None while verification is off)."""
    if security.acs_tokens is None:
        return None
    try:
        return await security.acs_tokens.verify_authorization(request.headers.get("authorization"))
    except SecurityError as exc:
        raise AuthRejected(exc) from exc


async def require_control_key(request: Request, security: SecurityDep) -> None:
    """Control API: the request carries CONTROL_API_KEY (when one is set)."""
    if security.control_key is None:
        return
    try:
        security.control_key.check(request.headers)
    except SecurityError as exc:
        raise AuthRejected(exc) from exc


async def require_eventgrid_auth(request: Request, security: SecurityDep) -> Claims | None:
    """Event Grid webhook: the `?code=` secret or an Entra token (when either is configured)."""
    if security.eventgrid is None:
        return None
    try:
        return await security.eventgrid.check(request.query_params, request.headers)
    except SecurityError as exc:
        raise AuthRejected(exc) from exc


AcsClaimsDep = Annotated[Claims | None, Depends(require_acs_token)]
EventGridClaimsDep = Annotated[Claims | None, Depends(require_eventgrid_auth)]
ControlKeyDep = Depends(require_control_key)


@dataclass(frozen=True, slots=True)
class UpgradeVerdict:
    """The outcome of checking a WebSocket upgrade before it is accepted."""

    claims: Claims | None  # the verified token's claims; None when verification is off
    rejection: AuthRejected | None = None

    @property
    def allowed(self) -> bool:
        return self.rejection is None


async def verify_ws_upgrade(websocket: WebSocket) -> UpgradeVerdict:
    """Check the upgrade's ACS bearer token; call before `accept()` so no audio is read."""
    security = get_security(websocket)
    if security.acs_tokens is None:
        return UpgradeVerdict(claims=None)
    try:
        claims = await security.acs_tokens.verify_authorization(
            websocket.headers.get("authorization")
        )
    except SecurityError as exc:
        return UpgradeVerdict(claims=None, rejection=AuthRejected(exc))
    return UpgradeVerdict(claims=claims)


async def refuse_ws_upgrade(websocket: WebSocket, verdict: UpgradeVerdict) -> None:
    """Refuse a not-yet-accepted WebSocket: an HTTP 401/503 JSON answer where the server
    supports denial responses (uvicorn does), else close code 1008 (HTTP 403 on the wire)."""
    rejection = verdict.rejection if verdict.rejection is not None else _generic_rejection()
    if "websocket.http.response" in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(rejection_response(rejection))
    else:
        await websocket.close(code=1008, reason=rejection.reason)


def _generic_rejection() -> AuthRejected:
    return AuthRejected(SecurityError())


def _http_form(error: SecurityError) -> tuple[str, int, dict[str, str]]:
    if isinstance(error, KeySetUnavailable):
        return "auth_unavailable", 503, {"Retry-After": str(RETRY_AFTER_S)}
    challenge = "Bearer"
    if isinstance(error, InvalidToken):
        # RFC 6750 §3; our reasons are fixed ASCII phrases, safe inside a quoted string.
        challenge = f'Bearer error="invalid_token", error_description="{error.reason}"'
    return "unauthorized", 401, {"WWW-Authenticate": challenge}
