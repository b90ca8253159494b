"""ACS accepts the service's credentials: one signed read that changes nothing.

GET of a call connection that cannot exist: ACS checks the signature (or the token) first, so
401/403 means a wrong key or identity, 404 means ACS accepted the credentials and found no such
call. The same SDK client the service uses makes the request, so it signs the same way.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from azure.communication.callautomation.aio import CallAutomationClient
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
)

from app.doctor.report import CheckResult, failed, passed, skipped
from app.settings import Settings

ACS_SCOPE = "https://communication.azure.com//.default"
KEY_FIX = (
    "copy the connection string again from the portal (the ACS resource > Settings > Keys) "
    "into ACS_CONNECTION_STRING; endpoint and key must be of the same resource"
)
IDENTITY_FIX = (
    "give this identity (the App Service's managed identity, or your `az login` account) the "
    "Contributor role on the ACS resource, or set ACS_CONNECTION_STRING instead"
)


async def check_credentials(settings: Settings, timeout_s: float) -> list[CheckResult]:
    """`acs.identity` (with ACS_ENDPOINT) and `acs.credentials`."""
    name = "acs.credentials"
    parsed = settings.connection_string
    if parsed is not None:
        credential: Any = AzureKeyCredential(parsed.access_key)
        return [await _signed_read(name, parsed.endpoint, credential, "access key", timeout_s)]
    if settings.acs_endpoint is None:
        return [skipped(name, "no ACS configured (the embedded emulator answers calls)")]
    from azure.identity.aio import DefaultAzureCredential

    endpoint = str(settings.acs_endpoint).rstrip("/")
    async with DefaultAzureCredential() as identity:
        try:
            await identity.get_token(ACS_SCOPE)
        except ClientAuthenticationError as exc:
            first_line = (exc.message or str(exc)).splitlines()[0]
            return [
                skipped(name, "no token to sign with"),
                _failed_identity(f"no managed identity token for ACS: {first_line[:200]}"),
            ]
        token_ok = passed("acs.identity", "the managed identity gets a token for ACS")
        return [
            token_ok,
            await _signed_read(name, endpoint, identity, "managed identity", timeout_s),
        ]


def _failed_identity(saw: str) -> CheckResult:
    return failed(
        "acs.identity",
        saw,
        "in Azure, turn on the App Service's system-assigned identity; on a laptop, "
        "`az login`. " + IDENTITY_FIX,
    )


async def _signed_read(
    name: str, endpoint: str, credential: Any, what: str, timeout_s: float
) -> CheckResult:
    client = CallAutomationClient(
        endpoint,
        credential,
        connection_timeout=timeout_s,
        read_timeout=timeout_s,
        retry_total=0,  # one answer is all a check needs
    )
    probe = f"acs-bridge-doctor-{uuid.uuid4()}"
    try:
        async with client:
            await client.get_call_connection(probe).get_call_properties()
    except ResourceNotFoundError as exc:
        if not _acs_error_body(exc):
            return failed(
                name,
                f"{endpoint} answered HTTP 404, but not as ACS does: it is no ACS endpoint",
                KEY_FIX,
            )
        return passed(name, f"ACS at {endpoint} accepts the {what} (a read of no call: HTTP 404)")
    except ClientAuthenticationError as exc:
        fix = KEY_FIX if what == "access key" else IDENTITY_FIX
        return failed(name, f"ACS at {endpoint} refused the {what}: {_short(exc)}", fix)
    except ServiceRequestError as exc:
        return failed(
            name,
            f"ACS at {endpoint} is unreachable: {_short(exc)}",
            "check the endpoint in ACS_CONNECTION_STRING / ACS_ENDPOINT: "
            "https://<resource>.<region>.communication.azure.com",
        )
    except HttpResponseError as exc:
        fix = IDENTITY_FIX if exc.status_code == 403 else KEY_FIX
        return failed(
            name, f"ACS at {endpoint} answered HTTP {exc.status_code}: {_short(exc)}", fix
        )
    return failed(name, f"ACS at {endpoint} found a call that cannot exist", KEY_FIX)


def _acs_error_body(exc: HttpResponseError) -> bool:
    """Whether the answer is ACS's error shape, `{"error": {"code": ...}}`: any web server
    answers 404 to an unknown path, only ACS answers it so."""
    if exc.response is None:
        return False
    try:
        body = json.loads(exc.response.text())
    except ValueError:
        return False
    error = body.get("error") if isinstance(body, dict) else None
    return isinstance(error, dict) and "code" in error


def _short(exc: Exception) -> str:
    message = getattr(exc, "message", None) or str(exc)
    return message.splitlines()[0][:200] if message else type(exc).__name__
