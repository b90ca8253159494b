"""The checks in order, from the outside in: the public URL, the webhook, ACS, the backend,
Redis. A check whose premise failed (no URL, no DNS) leaves the ones after it out, marked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from app.doctor import acs, backend, eventgrid, public, stores
from app.doctor.config import check_security_settings
from app.doctor.http import TIMEOUT_S, Clients, open_clients
from app.doctor.report import Report, Status, skipped
from app.settings import Settings

PUBLIC_CHECKS_AFTER_DNS = (
    "public.tls",
    "public.identity",
    "public.websocket",
    "public.callbacks",
    "eventgrid.handshake",
    "eventgrid.auth",
)


async def run_doctor(settings: Settings, *, timeout_s: float = TIMEOUT_S) -> Report:
    """Every check against the service at PUBLIC_BASE_URL, with these settings."""
    report = Report()
    async with open_clients(timeout_s) as clients:
        report.add(check_security_settings(settings))
        url = report.add(public.check_url(settings))
        if settings.public_base_url is None:
            for name in ("public.dns", *PUBLIC_CHECKS_AFTER_DNS):
                report.add(skipped(name, "PUBLIC_BASE_URL is not set"))
        else:
            dns = report.add(await public.check_dns(settings))
            if dns.status is Status.FAIL:
                for name in PUBLIC_CHECKS_AFTER_DNS:
                    report.add(skipped(name, "the public host does not resolve"))
            else:
                await _public_checks(settings, report, clients)
        for result in await acs.check_credentials(settings, timeout_s):
            report.add(result)
        report.add(await backend.check_backend(settings, clients))
        report.add(await stores.check_redis(settings))
        if settings.public_base_url is not None and url.status is not Status.FAIL:
            report.instructions.extend(eventgrid.subscription_instructions(settings))
    return report


async def _public_checks(settings: Settings, report: Report, clients: Clients) -> None:
    tls = report.add(await public.check_certificate(settings, clients))
    if tls.status is Status.FAIL:
        for name in PUBLIC_CHECKS_AFTER_DNS[1:]:
            report.add(skipped(name, "no trusted TLS connection to the public URL"))
        return
    report.add(await public.check_identity(settings, clients))
    report.add(await public.check_websocket(settings, clients))
    report.add(await public.check_callbacks(settings, clients))
    report.add(await eventgrid.check_handshake(settings, clients))
    report.add(await eventgrid.check_refusal(settings, clients))


@asynccontextmanager
async def started_service(settings: Settings) -> AsyncIterator[None]:
    """`--start`: this process serves the app on HOST:PORT while the checks run; the tunnel
    or proxy named by PUBLIC_BASE_URL must forward to that port."""
    from app.main import production_app
    from app.server import bind_socket, serve_in_background

    app = production_app(settings)
    sock = bind_socket(settings.listen_host, settings.port)
    async with serve_in_background(app, sock=sock, settings=settings):
        yield
