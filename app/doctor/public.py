"""PUBLIC_BASE_URL as ACS reaches it: https, DNS, certificate, this very service, WebSocket
upgrades (8581's cause), and the callback URL the service hands to ACS."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import ssl
from datetime import UTC, datetime
from urllib.parse import urlsplit

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidHandshake, InvalidStatus, WebSocketException

from app.doctor.http import Clients
from app.doctor.proof import identity_key, proof_matches
from app.doctor.report import CheckResult, failed, passed, skipped, warned
from app.settings import Settings

CERT_EXPIRY_WARN_DAYS = 14
WEBSOCKET_FIX = (
    "the proxy or tunnel in front of the service must carry WebSocket upgrades (ACS reports "
    "MediaStreamingFailed 8581 'Transport url is not valid or web socket server is not "
    "operational' otherwise). Dev tunnel: `devtunnel create --allow-anonymous`, "
    "`devtunnel port create -p 8000 --protocol auto`, `devtunnel host` (or "
    "`devtunnel host -p 8000 --allow-anonymous`); App Service: Configuration > General "
    "settings > Web sockets: On; nginx: `proxy_http_version 1.1` and the Upgrade/Connection "
    "headers passed on"
)
TUNNEL_FIX = (
    "start the service (`acs-bridge serve`, or run doctor with --start) and point "
    "PUBLIC_BASE_URL at the URL your tunnel or App Service prints now"
)


def new_nonce() -> str:
    return secrets.token_urlsafe(24)


def check_url(settings: Settings) -> CheckResult:
    """`public.url`: set, and https (http only with ALLOW_INSECURE_DEVELOPMENT)."""
    name = "public.url"
    if settings.public_base_url is None:
        return failed(
            name,
            "PUBLIC_BASE_URL is not set",
            "set PUBLIC_BASE_URL to the https origin ACS reaches this service at "
            "(the dev tunnel URL, or https://<app>.azurewebsites.net)",
        )
    url = str(settings.public_base_url).rstrip("/")
    scheme = urlsplit(url).scheme
    if scheme == "https":
        return passed(name, f"{url} is https")
    if settings.allow_insecure_development:
        return warned(
            name,
            f"{url} is plain http (allowed by ALLOW_INSECURE_DEVELOPMENT)",
            "ACS only calls https callbacks and wss media URLs: use an https tunnel for real calls",
        )
    return failed(
        name,
        f"{url} is plain http",
        "ACS refuses http callback URLs ('The field CallbackUri is invalid') and ws:// media "
        "URLs: set PUBLIC_BASE_URL to an https URL (a dev tunnel or App Service gives one)",
    )


async def check_dns(settings: Settings) -> CheckResult:
    """`public.dns`: the host resolves."""
    name = "public.dns"
    host = _host(settings)
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError as exc:
        return failed(
            name,
            f"{host} does not resolve ({exc.strerror or exc})",
            "the tunnel may be gone or renamed: " + TUNNEL_FIX,
        )
    addresses = sorted({str(info[4][0]) for info in infos})
    return passed(name, f"{host} resolves to {', '.join(addresses[:3])}")


async def check_certificate(settings: Settings, clients: Clients) -> CheckResult:
    """`public.tls`: the certificate verifies with the system's trust, and is not expiring."""
    name = "public.tls"
    parts = urlsplit(str(settings.public_base_url))
    if parts.scheme != "https":
        return skipped(name, "plain http: no certificate")
    host, port = parts.hostname or "", parts.port or 443
    try:
        async with asyncio.timeout(clients.timeout_s):
            _, writer = await asyncio.open_connection(
                host, port, ssl=clients.tls, server_hostname=host
            )
    except ssl.SSLCertVerificationError as exc:
        return failed(
            name,
            f"the certificate of {host} does not verify: {exc.verify_message}",
            "ACS only calls certificates a public CA issued: use the tunnel's or App "
            "Service's own certificate. If a corporate or test CA signed it on purpose, trust "
            "that CA here with SSL_CERT_FILE=<ca.pem> (or SSL_CERT_DIR)",
        )
    except (OSError, TimeoutError, ssl.SSLError) as exc:
        return failed(name, f"no TLS connection to {host}:{port}: {exc}", TUNNEL_FIX)
    cert = writer.get_extra_info("peercert") or {}
    writer.close()
    # The answer is in; a peer that drops the close is no concern here.
    with contextlib.suppress(OSError, ssl.SSLError):
        await writer.wait_closed()
    not_after = cert.get("notAfter")
    issuer = _rdn(cert.get("issuer"), "organizationName") or _rdn(cert.get("issuer"), "commonName")
    if not isinstance(not_after, str):
        return passed(name, f"{host}: certificate verified")
    expires = datetime.fromtimestamp(ssl.cert_time_to_seconds(not_after), UTC)
    days = (expires - datetime.now(UTC)).days
    saw = f"{host}: certificate verified (issuer {issuer or '?'}, expires {expires:%Y-%m-%d})"
    if days < CERT_EXPIRY_WARN_DAYS:
        return warned(name, f"{saw}, in {days} days", "renew the certificate")
    return passed(name, saw)


async def check_identity(settings: Settings, clients: Clients) -> CheckResult:
    """`public.identity`: the public URL reaches this very deployment (app.doctor.proof)."""
    name = "public.identity"
    nonce = new_nonce()
    url = settings.public_url("/api/doctor/identity")
    try:
        response = await clients.http.get(url, params={"nonce": nonce})
    except httpx.HTTPError as exc:
        return failed(name, f"GET {url} failed: {_describe(exc)}", TUNNEL_FIX)
    if response.is_redirect:
        where = response.headers.get("location", "?")
        return failed(
            name,
            f"{url} redirects to {where[:100]} (a login page: the tunnel is not anonymous?)",
            "ACS cannot log in: host the dev tunnel with --allow-anonymous",
        )
    body = _json(response)
    if response.status_code in (502, 503, 504) and body is None:
        return failed(
            name,
            f"{url} answered HTTP {response.status_code}: the tunnel or front end is up, but "
            "nothing answers behind it",
            "start the service on the port the tunnel forwards to (`acs-bridge serve`, or "
            "doctor --start), or forward the tunnel to the port the service listens on",
        )
    if response.status_code != 200 or body is None or body.get("service") != "acs-bridge":
        return failed(
            name,
            f"{url} answered HTTP {response.status_code} "
            f"{response.headers.get('content-type', '')}, not acs-bridge's doctor route: "
            "another service, a parked page or an old tunnel answers there (or an older "
            "acs-bridge)",
            TUNNEL_FIX,
        )
    key = identity_key(settings)
    if key is None:
        return warned(
            name,
            "an acs-bridge answers, but no secret is configured to prove it is this one",
            "set EVENTGRID_SECRET and CONTROL_API_KEY (needed with ACS anyway)",
        )
    if not proof_matches(key, nonce, body.get("proof")):
        return failed(
            name,
            "another acs-bridge deployment answers at the public URL: its "
            "EVENTGRID_SECRET / CONTROL_API_KEY / ACS key differ from these settings",
            "PUBLIC_BASE_URL points at another deployment or an old tunnel: point it (and "
            "the tunnel) at this service, or run doctor with the service's own settings",
        )
    return passed(name, f"this service answers at {settings.public_url('/')}")


async def check_websocket(settings: Settings, clients: Clients) -> CheckResult:
    """`public.websocket`: an upgrade through the public URL reaches this service, and /ws is
    the service's media route (it refuses a socket without ACS's token)."""
    name = "public.websocket"
    nonce = new_nonce()
    url = settings.public_ws_url("/api/doctor/ws") + f"?nonce={nonce}"
    tls = clients.tls if url.startswith("wss://") else None
    try:
        async with (
            asyncio.timeout(clients.timeout_s),
            connect(url, ssl=tls, open_timeout=None, proxy=None) as socket_,
        ):
            message = json.loads(await socket_.recv())
    except InvalidStatus as exc:
        status = exc.response.status_code
        return failed(
            name,
            f"the WebSocket upgrade to {_origin(url)} was refused with HTTP {status}: "
            "the way in does not carry WebSockets",
            WEBSOCKET_FIX,
        )
    except (InvalidHandshake, WebSocketException, OSError, TimeoutError, ValueError) as exc:
        return failed(
            name,
            f"no WebSocket through {_origin(url)}: {_describe(exc)}",
            WEBSOCKET_FIX,
        )
    key = identity_key(settings)
    if key is not None and not proof_matches(key, nonce, message.get("proof")):
        return failed(
            name,
            "a WebSocket opens, but another acs-bridge deployment answers it",
            "the public URL's WebSockets go elsewhere: point the tunnel at this service",
        )
    media = await _media_route(settings, clients)
    return passed(name, f"WebSocket upgrades reach this service through {_origin(url)}; {media}")


async def _media_route(settings: Settings, clients: Clients) -> str:
    # Without ACS token checks a bare socket on /ws would start a media session: not probed.
    if not settings.acs_resource_id:
        return "/ws not probed (ACS_RESOURCE_ID unset: it would accept any socket)"
    url = settings.public_ws_url("/ws")
    tls = clients.tls if url.startswith("wss://") else None
    try:
        async with asyncio.timeout(clients.timeout_s), connect(url, ssl=tls, proxy=None):
            return "/ws accepted a socket without a token (unexpected)"
    except InvalidStatus as exc:
        status = exc.response.status_code
        if status in (401, 403):
            return f"/ws refuses a socket without ACS's token (HTTP {status}), as it should"
        return f"/ws answered HTTP {status} to a socket without a token"
    except (InvalidHandshake, WebSocketException, OSError, TimeoutError) as exc:
        return f"/ws did not answer: {_describe(exc)}"


async def check_callbacks(settings: Settings, clients: Clients) -> CheckResult:
    """`public.callbacks`: the callback URL given to ACS reaches the service's callback route
    (an empty, unauthenticated batch: refused or ignored, it changes nothing)."""
    name = "public.callbacks"
    url = settings.public_url("/api/callbacks")
    try:
        response = await clients.http.post(url, content=b"[]", headers=_json_type())
    except httpx.HTTPError as exc:
        return failed(name, f"POST {url} failed: {_describe(exc)}", TUNNEL_FIX)
    body = _json(response)
    if body is None or response.status_code in (404, 405) or response.status_code >= 500:
        return failed(
            name,
            f"POST {url} answered HTTP {response.status_code}, not the service's callback route",
            "ACS posts every call event there: " + TUNNEL_FIX,
        )
    how = "refuses it without ACS's token" if response.status_code == 401 else "answers it"
    return passed(name, f"{url} reaches the callback route ({how}, HTTP {response.status_code})")


def _host(settings: Settings) -> str:
    return urlsplit(str(settings.public_base_url)).hostname or ""


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(response: httpx.Response) -> dict[str, object] | None:
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _json_type() -> dict[str, str]:
    return {"Content-Type": "application/json"}


def _rdn(names: object, key: str) -> str | None:
    if not isinstance(names, tuple):
        return None
    for rdn in names:
        for pair in rdn:
            if pair[0] == key:
                return str(pair[1])
    return None


def _describe(exc: BaseException) -> str:
    cause = exc.__cause__ or exc.__context__
    text = str(exc) or type(exc).__name__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"{text} (certificate: {cause.verify_message})"
    return text
