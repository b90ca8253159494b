"""The Event Grid webhook: subscription handshakes and IncomingCall deliveries."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.calls.deliveries import EventParseError, load_json_array, parse_grid_events
from app.security.dependencies import EventGridClaimsDep

router = APIRouter(prefix="/api", tags=["event grid"])

_DELIVERY_EXAMPLE: list[dict[str, Any]] = [
    {
        "id": "d5546be8-227a-4db8-b2c3-4f06fd675fd6",
        "eventType": "Microsoft.Communication.IncomingCall",
        "data": {"incomingCallContext": "...", "from": {"rawId": "4:+14255550123"}},
    }
]


@router.post(
    "/incomingCall",
    summary="Event Grid deliveries (Event Grid or CloudEvents schema)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"type": "object"}},
                    "example": _DELIVERY_EXAMPLE,
                }
            },
        }
    },
    responses={
        200: {"description": "Handshake answered, or events accepted"},
        400: {"description": "Malformed delivery"},
        401: {"description": "Missing or wrong EVENTGRID_SECRET (?code=) or Entra token"},
        502: {"description": "ACS failed to answer: Event Grid retries"},
        503: {
            "description": "This instance is shutting down, or its call store is unreachable "
            "(the body says which and why): Event Grid retries"
        },
    },
)
async def incoming_call(
    request: Request, services: ServicesDep, _auth: EventGridClaimsDep
) -> JSONResponse:
    if services.stopping.requested:
        # Event Grid retries a 503, and by then another instance (or this one restarted) answers.
        raise ApiError(503, "shutting_down", "this instance is shutting down; retry")
    try:
        events = parse_grid_events(load_json_array(await request.body()))
        outcome = await services.intake.handle_grid_events(events)
    except EventParseError as exc:
        raise ApiError(400, "invalid_event", str(exc)) from exc
    if outcome.validation_response is not None:
        return JSONResponse({"validationResponse": outcome.validation_response})
    return JSONResponse(
        {
            "answered": list(outcome.answered),
            "duplicates": outcome.duplicates,
            "ignored": outcome.ignored,
        }
    )


@router.options("/incomingCall", summary="CloudEvents webhook validation handshake")
async def incoming_call_handshake(
    _auth: EventGridClaimsDep,
    webhook_request_origin: str | None = Header(default=None),
    webhook_request_rate: str | None = Header(default=None),
) -> Response:
    headers = {"WebHook-Allowed-Origin": webhook_request_origin or "*", "Allow": "POST, OPTIONS"}
    if webhook_request_rate:
        headers["WebHook-Allowed-Rate"] = "*"
    return Response(status_code=200, headers=headers)
