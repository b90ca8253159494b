"""Test calls through the embedded ACS emulator (only when the emulator is the service's ACS)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field
from starlette.requests import HTTPConnection

from app.api.deps import ServicesDep
from app.api.errors import ApiError
from app.security.dependencies import ControlKeyDep
from app.services import Services

if TYPE_CHECKING:  # the emulator is imported only when it runs
    from app.emulator import EmulatedCall

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
    body = body or TestCallRequest()
    placed = await place_call(
        request, services, caller=body.caller, caller_display_name=body.caller_display_name
    )
    return TestCallPlaced(
        event_id=placed.event_id,
        call_connection_id=placed.call.call_connection_id if placed.call else None,
        webhook_status=placed.webhook_status,
    )


@dataclass(frozen=True, slots=True)
class PlacedCall:
    """An incoming call the emulator delivered to this service, and the call it answered."""

    event_id: str
    call: EmulatedCall | None  # None: the service did not answer it
    webhook_status: int


async def place_call(
    connection: HTTPConnection, services: Services, *, caller: str, caller_display_name: str
) -> PlacedCall:
    """Ring this service from the embedded emulator: Event Grid IncomingCall, answered through
    the SDK like any call. Raises ApiError (404 no emulator, 409 unreachable, 502 refused)."""
    emulator = services.emulator
    if emulator is None:
        raise ApiError(404, "emulator_off", "test calls need the embedded ACS emulator")
    settings = services.settings  # pointed at the emulator, public URL included
    _check_reachable(connection, settings.public_url("/"))
    url = settings.public_url("/api/incomingCall")
    if settings.eventgrid_secret is not None:
        url += f"?code={settings.eventgrid_secret.get_secret_value()}"
    delivery = await emulator.place_incoming_call(
        url, caller=caller, caller_display_name=caller_display_name
    )
    call = await emulator.call_for_context(delivery.incoming_call_context)
    status = delivery.deliveries[0].status if delivery.deliveries else None
    if status is None or status >= 300:
        raise ApiError(502, "test_call_failed", f"the webhook answered {status}")
    return PlacedCall(event_id=delivery.event_id, call=call, webhook_status=status)


def _check_reachable(connection: HTTPConnection, public_url: str) -> None:
    """Refuse a test call the emulator could not deliver: the service listens elsewhere.

    The embedded emulator reaches the service at PUBLIC_BASE_URL, by default
    http://127.0.0.1:<PORT>; `uvicorn app.main:app --port N` without PORT=N would miss it.
    """
    target = urlsplit(public_url)
    server = connection.scope.get("server")
    if target.hostname != "127.0.0.1" or not server or server[1] == target.port:
        return
    raise ApiError(
        409,
        "emulator_unreachable",
        f"the embedded ACS emulator reaches this service at {target.scheme}://"
        f"{target.netloc} but it listens on port {server[1]}: set PORT={server[1]} "
        "(or PUBLIC_BASE_URL)",
    )
