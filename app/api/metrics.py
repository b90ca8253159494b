"""`GET /metrics`: this instance's Prometheus metrics (scrape it from inside the network only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.api.deps import ServicesDep

router = APIRouter(tags=["operations"])


# Out of the OpenAPI schema: an operations endpoint in Prometheus' format, not part of the API.
@router.get("/metrics", response_class=Response, include_in_schema=False)
async def metrics(request: Request, services: ServicesDep) -> Response:
    body, content_type = services.metrics.render(request.headers.get("accept", ""))
    return Response(body, media_type=content_type)
