"""ACS HMAC-SHA256 request signing, as `azure-communication-*` SDKs do it: pure functions.

String to sign: `VERB\\npath?query\\n<signed header values joined by ";">`, where the value of the
`host` signed header is the endpoint's `host[:port]` as the client configured it (not the `Host`
header). The key is the base64-decoded access key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime

SIGNED_HEADERS = "x-ms-date;host;x-ms-content-sha256"
MAX_CLOCK_SKEW_S = 300.0
_SCHEME = "HMAC-SHA256"


class SignatureError(Exception):
    """The request's HMAC credentials are missing, malformed, stale or wrong."""


def content_hash(body: bytes) -> str:
    """Base64 SHA-256 of the body bytes (of b"" when there is no body)."""
    return base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


def http_date(when: datetime | None = None) -> str:
    """An RFC 1123 date in GMT, as `x-ms-date` carries it."""
    return format_datetime(when or datetime.now(UTC), usegmt=True)


def compute_signature(access_key: str, string_to_sign: str) -> str:
    """Base64 HMAC-SHA256 of `string_to_sign` under the base64 access key."""
    key = base64.b64decode(access_key)
    digest = hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).digest()
    return base64.b64encode(digest).decode("ascii")


def sign_request(
    access_key: str,
    method: str,
    path_and_query: str,
    host: str,
    body: bytes = b"",
    *,
    date: str | None = None,
) -> dict[str, str]:
    """The headers an SDK adds to a request: x-ms-date, x-ms-content-sha256, Authorization."""
    date = date if date is not None else http_date()
    body_hash = content_hash(body)
    to_sign = f"{method.upper()}\n{path_and_query}\n{date};{host};{body_hash}"
    signature = compute_signature(access_key, to_sign)
    return {
        "x-ms-date": date,
        "x-ms-content-sha256": body_hash,
        "Authorization": f"{_SCHEME} SignedHeaders={SIGNED_HEADERS}&Signature={signature}",
    }


def verify_request(
    access_key: str,
    method: str,
    path_and_query: str,
    hosts: Iterable[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    now: datetime | None = None,
) -> None:
    """Check a request's HMAC credentials; raise `SignatureError` saying what is wrong.

    `hosts` lists the acceptable values of the signed `host` (usually just the endpoint's);
    `headers` must be case-insensitive (aiohttp's `CIMultiDictProxy` is).
    """
    signed_headers, signature = _parse_authorization(headers.get("Authorization"))
    names = [name.strip().lower() for name in signed_headers.split(";")]
    for required in ("x-ms-date", "host", "x-ms-content-sha256"):
        if required not in names:
            raise SignatureError(f"SignedHeaders must include {required}")

    claimed_hash = headers.get("x-ms-content-sha256", "")
    if not hmac.compare_digest(claimed_hash.encode(), content_hash(body).encode()):
        raise SignatureError("x-ms-content-sha256 does not match the request body")
    _check_date(headers.get("x-ms-date"), now or datetime.now(UTC))

    candidates = list(hosts)
    for host in candidates:
        values = [host if name == "host" else headers.get(name, "") for name in names]
        to_sign = f"{method.upper()}\n{path_and_query}\n{';'.join(values)}"
        expected = compute_signature(access_key, to_sign)
        if hmac.compare_digest(expected.encode(), signature.encode()):
            return
    raise SignatureError("the request signature does not match")


def _parse_authorization(value: str | None) -> tuple[str, str]:
    if not value:
        raise SignatureError("missing Authorization header")
    scheme, _, params = value.strip().partition(" ")
    if scheme != _SCHEME:
        raise SignatureError(f"Authorization scheme must be {_SCHEME}")
    fields: dict[str, str] = {}
    for part in params.strip().split("&"):
        name, sep, field_value = part.partition("=")
        if not sep:
            raise SignatureError("malformed Authorization header")
        # The signature is base64 and may itself end in "=": only the first "=" separates.
        fields[name.strip()] = field_value.strip()
    if not fields.get("SignedHeaders") or not fields.get("Signature"):
        raise SignatureError("Authorization needs SignedHeaders and Signature")
    return fields["SignedHeaders"], fields["Signature"]


def _check_date(value: str | None, now: datetime) -> None:
    if not value:
        raise SignatureError("missing x-ms-date header")
    try:
        sent = parsedate_to_datetime(value)
    except (TypeError, ValueError) as exc:
        raise SignatureError("x-ms-date is not an RFC 1123 date") from exc
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    if abs((now - sent).total_seconds()) > MAX_CLOCK_SKEW_S:
        raise SignatureError("x-ms-date is more than 5 minutes off the service's clock")
