"""The Event Grid webhook through the public URL: the validation handshake with the configured
secret, its refusal without it, and the subscription doctor cannot check from here."""

from __future__ import annotations

import secrets
import shlex
import uuid
from urllib.parse import urlsplit

import httpx

from app.doctor.http import Clients
from app.doctor.report import CheckResult, failed, passed, skipped, warned
from app.settings import Settings

VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"
INCOMING_CALL = "Microsoft.Communication.IncomingCall"


async def check_handshake(settings: Settings, clients: Clients) -> CheckResult:
    """`eventgrid.handshake`: the webhook echoes a validation code, as Event Grid requires."""
    name = "eventgrid.handshake"
    secret = _secret(settings)
    if secret is None and settings.eventgrid_entra_audience:
        return skipped(
            name,
            "the webhook takes Entra ID tokens (EVENTGRID_ENTRA_*): only Event Grid can sign "
            "one; the refusal of unauthenticated handshakes is checked below",
        )
    code = secrets.token_hex(16)
    url = webhook_url(settings, secret)
    shown = webhook_url(settings, "***" if secret else None)
    try:
        response = await _handshake(clients, url, code)
    except httpx.HTTPError as exc:
        return failed(name, f"POST {shown} failed: {exc or type(exc).__name__}", _reach_fix())
    if response.status_code == 401:
        return failed(
            name,
            f"{shown} refused the handshake with EVENTGRID_SECRET (HTTP 401): the running "
            "service has another secret",
            "give the service and this doctor the same EVENTGRID_SECRET (the one in the "
            "subscription's ?code=), and restart the service after changing it",
        )
    answer = _validation_response(response)
    if response.status_code != 200 or answer != code:
        return failed(
            name,
            f"{shown} answered HTTP {response.status_code} without the validation code",
            "Event Grid would never validate this endpoint: " + _reach_fix(),
        )
    return passed(name, f"{shown} answers the subscription-validation handshake")


async def check_refusal(settings: Settings, clients: Clients) -> CheckResult:
    """`eventgrid.auth`: a handshake without the secret (or token) is refused."""
    name = "eventgrid.auth"
    url = webhook_url(settings, None)
    try:
        response = await _handshake(clients, url, secrets.token_hex(16))
    except httpx.HTTPError as exc:
        return failed(name, f"POST {url} failed: {exc or type(exc).__name__}", _reach_fix())
    if response.status_code == 401:
        return passed(name, "the webhook refuses a handshake without the secret (HTTP 401)")
    if response.status_code == 200:
        if settings.allow_insecure_development:
            return warned(
                name,
                "the webhook answers anyone (ALLOW_INSECURE_DEVELOPMENT)",
                "set EVENTGRID_SECRET before the URL is shared",
            )
        return failed(
            name,
            "the webhook answers a handshake without any secret: anyone can ring the service",
            "set EVENTGRID_SECRET (and ?code=<secret> on the subscription's endpoint)",
        )
    return failed(name, f"{url} answered HTTP {response.status_code}", _reach_fix())


def subscription_instructions(settings: Settings) -> list[str]:
    """The `az` command and the portal steps that create this deployment's subscription."""
    secret = _secret(settings)
    endpoint = webhook_url(settings, secret)
    resource = acs_resource_name(settings) or "<acs-resource-name>"
    source = (
        "/subscriptions/<subscription-id>/resourceGroups/<resource-group>/providers/"
        f"Microsoft.Communication/communicationServices/{resource}"
    )
    command = [
        "az eventgrid event-subscription create \\",
        "  --name acs-bridge-incoming-call \\",
        f"  --source-resource-id {shlex.quote(source)} \\",
        "  --endpoint-type webhook \\",
        f"  --endpoint {shlex.quote(endpoint)} \\",
        f"  --included-event-types {INCOMING_CALL}",
    ]
    return [
        "The Event Grid subscription cannot be checked from here. Create it (once per "
        "public URL) with:",
        "",
        *command,
        "",
        "or in the Azure portal: the ACS resource > Events > + Event Subscription; event "
        "types: Incoming Call; endpoint type: Web Hook; endpoint: the URL above. Its "
        "provisioning state turns Succeeded once the service answered the validation "
        "handshake. Add `--advanced-filter data.to.PhoneNumber.Value StringIn +1...` to "
        "ring this service for one number only.",
    ]


def webhook_url(settings: Settings, secret: str | None) -> str:
    url = settings.public_url("/api/incomingCall")
    return f"{url}?code={secret}" if secret else url


def acs_resource_name(settings: Settings) -> str | None:
    """`contoso` of `https://contoso.<region>.communication.azure.com`, when it is one."""
    endpoint = settings.acs_endpoint or (
        settings.connection_string.endpoint if settings.connection_string else None
    )
    host = urlsplit(str(endpoint)).hostname if endpoint else None
    if host and host.endswith(".communication.azure.com"):
        return host.split(".", 1)[0]
    return None


async def _handshake(clients: Clients, url: str, code: str) -> httpx.Response:
    event = {
        "id": str(uuid.uuid4()),
        "topic": "/subscriptions/acs-bridge-doctor",
        "subject": "",
        "eventType": VALIDATION_EVENT,
        "eventTime": "2026-01-01T00:00:00Z",
        "data": {"validationCode": code, "validationUrl": None},
        "dataVersion": "1",
        "metadataVersion": "1",
    }
    return await clients.http.post(
        url, json=[event], headers={"aeg-event-type": "SubscriptionValidation"}
    )


def _validation_response(response: httpx.Response) -> object:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("validationResponse") if isinstance(body, dict) else None


def _secret(settings: Settings) -> str | None:
    if settings.eventgrid_secret is None:
        return None
    return settings.eventgrid_secret.get_secret_value() or None


def _reach_fix() -> str:
    return "the webhook must answer through PUBLIC_BASE_URL: see public.identity above"
