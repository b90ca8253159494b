"""Call Automation callbacks: CloudEvents arrays posted by ACS to our callback URI."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.calls.deliveries import EventParseError, load_json_array, parse_callback_events
from app.security.dependencies import AcsClaimsDep

router = APIRouter(prefix="/api", tags=["callbacks"])


@router.post(
    "/callbacks",
    summary="Call Automation callback events (array of CloudEvents)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "array", "items": {"type": "object"}}}
            },
        }
    },
    responses={
        200: {"description": "Events applied (`applied`), repeats of applied ones skipped"},
        400: {"description": "Malformed events"},
        401: {"description": "Missing or invalid ACS token"},
        503: {"description": "The call store is unreachable (the body says which and why)"},
    },
)
async def callbacks(request: Request, services: ServicesDep, _claims: AcsClaimsDep) -> JSONResponse:
    try:
        events = parse_callback_events(load_json_array(await request.body()))
    except EventParseError as exc:
        raise ApiError(400, "invalid_event", str(exc)) from exc
    outcome = await services.intake.apply_callbacks(events)
    return JSONResponse({"applied": outcome.applied, "duplicates": outcome.duplicates})
