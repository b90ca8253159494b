"""What `acs-bridge doctor` asks of the running service through its public URL.

`GET /api/doctor/identity?nonce=N` answers the deployment's proof of N (app.doctor.proof), so
doctor knows the public URL reaches this very service. `/api/doctor/ws?nonce=N` does the same
over a WebSocket, so doctor knows the way in carries upgrades as ACS's media stream needs. Both
reveal nothing but an HMAC of a value the asker chose (not even the instance's host name: the
routes answer anyone who asks).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, WebSocket
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep, get_ws_services
from app.doctor.proof import identity_key, prove
from app.services import Services

router = APIRouter(prefix="/api/doctor", tags=["doctor"])

NonceQuery = Annotated[str, Query(min_length=16, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")]
NO_KEY_CLOSE_CODE = 4404


@router.get("/identity", summary="This deployment's proof of a nonce, for acs-bridge doctor")
async def identity(nonce: NonceQuery, services: ServicesDep) -> JSONResponse:
    key = _key(services)
    body: dict[str, object] = {
        "service": "acs-bridge",
    }
    # With no secret configured there is nothing to prove with: doctor says so (a WARN).
    body["proof"] = prove(key, nonce) if key is not None else None
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


@router.websocket("/ws")
async def identity_socket(websocket: WebSocket, nonce: NonceQuery) -> None:
    services = get_ws_services(websocket)
    key = _key(services)
    await websocket.accept()
    await websocket.send_json(
        {"service": "acs-bridge", "proof": prove(key, nonce) if key else None}
    )
    await websocket.close(code=1000)


def _key(services: Services) -> bytes | None:
    # The embedded emulator's access key is this process's own; doctor cannot know it.
    return identity_key(services.settings, include_acs_key=services.emulator is None)
