"""Liveness and readiness probes (App Service health check uses /readyz)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from app.api.deps import ServicesDep
from app.calls.store import CallStore, StoreUnavailable

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", summary="Ready to take calls: settings valid, dependencies reachable")
async def readyz(services: ServicesDep) -> JSONResponse:
    # Cheap checks only: a probe every few seconds must not cost an ACS request.
    store_problem = await _store_problem(services.store)
    checks: dict[str, bool] = {
        "store": store_problem is None,
        "acs_configured": services.control.configured,
        # Off while draining for a stop, so the load balancer sends new calls elsewhere.
        "accepting_calls": not services.stopping.requested,
    }
    ready = all(checks.values())
    body: dict[str, object] = {"status": "ready" if ready else "not_ready", "checks": checks}
    if store_problem is not None:
        # Which store and why (`store unreachable: host:port: reason`), not only a false.
        body["store_error"] = store_problem
    return JSONResponse(body, status_code=200 if ready else 503)


async def _store_problem(store: CallStore) -> str | None:
    try:
        await store.ping()
    except StoreUnavailable as exc:
        return str(exc)
    return None
