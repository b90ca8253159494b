"""Test calls through the embedded ACS emulator (only when the emulator is the service's ACS)."""

from __future__ import annotations

from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.security.dependencies import ControlKeyDep

router = APIRouter(prefix="/api/emulator", tags=["emulator"], dependencies=[ControlKeyDep])


class TestCallRequest(BaseModel):
    caller: str = Field(default="+14255550123", pattern=r"^(\+[1-9]\d{6,14}|8:[A-Za-z0-9:_\-.]+)$")
    caller_display_name: str = Field(default="Test Caller", max_length=100)


class TestCallPlaced(BaseModel):
    event_id: str
    call_connection_id: str | None
    webhook_status: int | None


@router.post(
    "/calls",
    status_code=201,
    response_model=TestCallPlaced,
    summary="Place a simulated incoming call (embedded emulator only)",
    responses={404: {"description": "The emulator is not this service's ACS"}},
)
async def place_test_call(
    request: Request, services: ServicesDep, body: TestCallRequest | None = None
) -> TestCallPlaced:
    emulator = services.emulator
    if emulator is None:
        raise ApiError(404, "emulator_off", "test calls need the embedded ACS emulator")
    settings = services.settings  # pointed at the emulator, public URL included
    _check_reachable(request, settings.public_url("/"))
    body = body or TestCallRequest()
    url = settings.public_url("/api/incomingCall")
    if settings.eventgrid_secret is not None:
        url += f"?code={settings.eventgrid_secret.get_secret_value()}"
    delivery = await emulator.place_incoming_call(
        url, caller=body.caller, caller_display_name=body.caller_display_name
    )
    call = await emulator.call_for_context(delivery.incoming_call_context)
    status = delivery.deliveries[0].status if delivery.deliveries else None
    if status is None or status >= 300:
        raise ApiError(502, "test_call_failed", f"the webhook answered {status}")
    return TestCallPlaced(
        event_id=delivery.event_id,
        call_connection_id=call.call_connection_id if call else None,
        webhook_status=status,
    )


def _check_reachable(request: Request, public_url: str) -> None:
    """Refuse a test call the emulator could not deliver: the service listens elsewhere.

    The embedded emulator reaches the service at PUBLIC_BASE_URL, by default
    http://127.0.0.1:<PORT>; `uvicorn app.main:app --port N` without PORT=N would miss it.
    """
    target = urlsplit(public_url)
    server = request.scope.get("server")
    if target.hostname != "127.0.0.1" or not server or server[1] == target.port:
        return
    raise ApiError(
        409,
        "emulator_unreachable",
        f"the embedded ACS emulator reaches this service at {target.scheme}://"
        f"{target.netloc} but it listens on port {server[1]}: set PORT={server[1]} "
        "(or PUBLIC_BASE_URL)",
    )
