"""Liveness and readiness probes (App Service health check uses /readyz)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to take calls: settings valid, dependencies reachable")
async def readyz(services: ServicesDep) -> JSONResponse:
    # Cheap checks only: a probe every few seconds must not cost an ACS request.
    checks: dict[str, bool] = {
        "store": await services.store.ping(),
        "acs_configured": services.control.configured,
        # Off while draining for a stop, so the load balancer sends new calls elsewhere.
        "accepting_calls": not services.stopping.requested,
    }
    ready = all(checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not_ready", "checks": checks},
        status_code=200 if ready else 503,
    )
