"""`acs-bridge doctor` against local stand-ins: the app behind a TLS proxy of a test CA (the
happy path), and each way a first call fails, named by its own line with its fix."""

from __future__ import annotations

import asyncio
import base64
import socket
from typing import Any

from app.doctor.report import CheckResult, Report, Status
from app.doctor.runner import run_doctor
from app.settings import Settings
from tests.conftest import AppFactory, LiveApp
from tests.doctor.conftest import PublicAppFactory
from tests.doctor.tls_proxy import TlsProxy

EXPECTED_PASSES = (
    "settings.security",
    "public.url",
    "public.dns",
    "public.tls",
    "public.identity",
    "public.websocket",
    "public.callbacks",
    "eventgrid.handshake",
    "eventgrid.auth",
    "acs.credentials",
    "backend.echo",
)


def doctor_settings(live: LiveApp, **changes: Any) -> Settings:
    """The settings doctor runs with: the service's own, with `changes`."""
    values = {**live.settings.model_dump(), **changes}
    return Settings.model_validate(values)


def check(report: Report, name: str) -> CheckResult:
    result = report.find(name)
    assert result is not None, report.text()
    return result


def failing(report: Report, name: str) -> CheckResult:
    result = check(report, name)
    assert result.status is Status.FAIL, report.text()
    assert result.fix
    return result


async def test_the_service_behind_a_trusted_tls_proxy_passes_every_check(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app() as live:
        report = await run_doctor(live.settings)
    for name in EXPECTED_PASSES:
        assert check(report, name).status is Status.PASS, report.text()
    assert report.exit_code == 0
    assert "/ws refuses a socket without ACS's token" in check(report, "public.websocket").saw


async def test_the_happy_path_prints_the_subscription_command(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app() as live:
        report = await run_doctor(live.settings)
    text = report.text()
    assert "az eventgrid event-subscription create" in text
    assert "--included-event-types Microsoft.Communication.IncomingCall" in text
    assert f"{live.settings.public_url('/api/incomingCall')}?code=" in text


async def test_a_proxy_that_refuses_websocket_upgrades_is_named_as_8581s_cause(
    start_public_app: PublicAppFactory, proxy: TlsProxy
) -> None:
    proxy.refuse_upgrades = True
    async with start_public_app() as live:
        report = await run_doctor(live.settings)
    result = failing(report, "public.websocket")
    assert "HTTP 502" in result.saw
    assert result.fix is not None
    assert "8581" in result.fix
    assert "devtunnel port create -p 8000 --protocol auto" in result.fix
    assert check(report, "public.identity").status is Status.PASS
    assert report.exit_code == 1


async def test_a_public_url_at_another_instance_fails_the_identity_check(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app(control_api_key="another-deployments-key") as other:
        mine = doctor_settings(other, control_api_key="this-deployments-key")
        report = await run_doctor(mine)
    result = failing(report, "public.identity")
    assert "another acs-bridge deployment answers" in result.saw
    assert report.exit_code == 1


async def test_a_wrong_event_grid_secret_fails_the_handshake(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app() as live:
        report = await run_doctor(doctor_settings(live, eventgrid_secret="not-the-services"))
    result = failing(report, "eventgrid.handshake")
    assert "HTTP 401" in result.saw
    assert result.fix is not None
    assert "EVENTGRID_SECRET" in result.fix
    assert check(report, "eventgrid.auth").status is Status.PASS


async def test_a_wrong_acs_access_key_is_refused_by_the_emulator(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app() as live:
        assert live.settings.connection_string is not None
        wrong_key = base64.b64encode(b"0" * 32).decode()
        endpoint = live.settings.connection_string.endpoint
        report = await run_doctor(
            doctor_settings(
                live, acs_connection_string=f"endpoint={endpoint};accesskey={wrong_key}"
            )
        )
    result = failing(report, "acs.credentials")
    assert "refused the access key" in result.saw
    assert result.fix is not None
    assert "Keys" in result.fix


async def test_an_http_public_url_fails_without_insecure_development(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app() as live:
        report = await run_doctor(doctor_settings(live, public_base_url=live.base_url))
    result = failing(report, "public.url")
    assert "plain http" in result.saw
    assert check(report, "public.identity").status is Status.PASS


async def test_an_unreachable_redis_fails_its_check() -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    settings = Settings(_env_file=None, redis_url=f"redis://127.0.0.1:{port}/0")
    report = await run_doctor(settings)
    result = failing(report, "redis")
    assert "does not answer" in result.saw


PARKED_PAGE = b"<html><body>This domain is parked</body></html>"


async def answer_parked_page(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n"
        + f"Content-Length: {len(PARKED_PAGE)}\r\n\r\n".encode()
        + PARKED_PAGE
    )
    await writer.drain()
    writer.close()


async def test_a_public_url_at_a_parked_page_fails_identity_and_callbacks(
    start_app: AppFactory, proxy: TlsProxy
) -> None:
    parked = await asyncio.start_server(answer_parked_page, "127.0.0.1", 0)
    async with parked, start_app(public_base_url=proxy.url) as live:
        proxy.upstream_port = parked.sockets[0].getsockname()[1]
        report = await run_doctor(live.settings)
    assert "not acs-bridge's doctor route" in failing(report, "public.identity").saw
    assert "not the service's callback route" in failing(report, "public.callbacks").saw
    assert failing(report, "public.websocket")
    assert failing(report, "eventgrid.handshake")


async def test_without_any_secret_the_identity_is_a_warning(
    start_public_app: PublicAppFactory,
) -> None:
    async with start_public_app(
        eventgrid_secret=None,
        control_api_key=None,
        acs_connection_string=None,
        acs_resource_id=None,
        allow_insecure_development=True,
    ) as live:
        report = await run_doctor(live.settings)
    result = check(report, "public.identity")
    assert result.status is Status.WARN, report.text()
    assert "no secret is configured" in result.saw


async def test_a_tunnel_with_nothing_behind_it_says_to_start_the_service(
    start_app: AppFactory, proxy: TlsProxy
) -> None:
    with socket.socket() as sock:  # a port nothing listens on once closed
        sock.bind(("127.0.0.1", 0))
        proxy.upstream_port = sock.getsockname()[1]
    async with start_app(public_base_url=proxy.url) as live:
        report = await run_doctor(live.settings)
    result = failing(report, "public.identity")
    assert "nothing answers behind it" in result.saw
    assert result.fix is not None
    assert "start the service" in result.fix


async def test_settings_the_service_refuses_are_a_fail_up_front() -> None:
    settings = Settings(
        _env_file=None,
        acs_connection_string="endpoint=https://127.0.0.1:9;accesskey=a2V5",
        public_base_url="https://localhost:9/",
    )
    report = await run_doctor(settings, timeout_s=2.0)
    result = failing(report, "settings.security")
    assert result.fix is not None
    assert "ACS_RESOURCE_ID" in result.fix
