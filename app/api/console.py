"""The operator console: its page at `/`, its configuration, and its live event stream.

The page is plain HTML/JS/CSS from `app/web` (no build step, no CDN). It acts through the control
API with the operator's key; the event stream takes the key as `?key=` too, because a browser's
EventSource cannot send headers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.observability.sse import EventStreamResponse, console_stream
from app.security.dependencies import AuthRejected
from app.security.errors import SecurityError

WEB_DIR = Path(__file__).resolve().parent.parent / "web"
_ASSETS: dict[str, str] = {
    "app.js": "text/javascript",
    "phone.js": "text/javascript",
    "phone-worklet.js": "text/javascript",  # the softphone's audio capture and playback
    "style.css": "text/css",
}
# The page runs only its own files: no inline script, nothing from elsewhere.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}

router = APIRouter(tags=["console"])


class ConsoleConfig(BaseModel):
    """What the page needs to know before it connects."""

    emulator: bool
    control_api_key_required: bool


@router.get("/", include_in_schema=False)
async def console_page() -> FileResponse:
    return FileResponse(WEB_DIR / "index.html", media_type="text/html", headers=_PAGE_HEADERS)


@router.get("/console/{asset}", include_in_schema=False)
async def console_asset(asset: str) -> FileResponse:
    media_type = _ASSETS.get(asset)  # a fixed list: no path ever reaches the file system
    if media_type is None:
        raise ApiError(404, "not_found", "no such console file")
    return FileResponse(WEB_DIR / asset, media_type=media_type, headers=_PAGE_HEADERS)


@router.get("/api/console/config", summary="Console configuration", response_model=ConsoleConfig)
async def console_config(services: ServicesDep) -> ConsoleConfig:
    # With the emulator as this app's ACS, the console offers to place test calls.
    return ConsoleConfig(
        emulator=services.emulator is not None,
        control_api_key_required=services.security.control_key is not None,
    )


async def require_stream_key(
    request: Request,
    services: ServicesDep,
    key: Annotated[str | None, Query(description="The control API key", max_length=512)] = None,
) -> None:
    """The control API key, from the usual headers or (EventSource only) `?key=`."""
    check = services.security.control_key
    if check is None:
        return
    try:
        check.check_with_query(request.headers, key)  # constant-time comparison
    except SecurityError as exc:
        raise AuthRejected(exc) from exc


# Out of the OpenAPI schema: an endless stream for the console, which generated clients and
# schema-driven tests cannot consume.
@router.get(
    "/api/events",
    response_class=EventStreamResponse,
    dependencies=[Depends(require_stream_key)],
    include_in_schema=False,
)
async def events(services: ServicesDep) -> EventStreamResponse:
    return EventStreamResponse(console_stream(services.events, services.store.list))
