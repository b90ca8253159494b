"""HMAC signing and verification, without sockets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from multidict import CIMultiDict

from app.emulator.hmac_auth import SignatureError, http_date, sign_request, verify_request

KEY = base64.b64encode(b"0123456789abcdef0123456789abcdef").decode()
HOST = "127.0.0.1:8443"
PATH = "/calling/callConnections:answer?api-version=2026-03-12"
BODY = b'{"incomingCallContext":"abc","callbackUri":"https://x/cb"}'


def _signed(body: bytes = BODY, **kwargs: str) -> CIMultiDict[str]:
    return CIMultiDict(sign_request(KEY, "POST", PATH, HOST, body, **kwargs))


def test_a_signed_request_verifies() -> None:
    verify_request(KEY, "POST", PATH, [HOST], _signed(), BODY)


def test_signature_matches_the_documented_string_to_sign() -> None:
    from app.emulator.hmac_auth import compute_signature, content_hash

    date = "Tue, 24 Nov 2026 03:07:38 GMT"
    expected = compute_signature(KEY, f"POST\n{PATH}\n{date};{HOST};{content_hash(BODY)}")

    headers = _signed(date=date)

    assert headers["Authorization"].endswith(f"&Signature={expected}")


def test_another_key_is_refused() -> None:
    other = base64.b64encode(b"f" * 32).decode()
    with pytest.raises(SignatureError, match="signature"):
        verify_request(other, "POST", PATH, [HOST], _signed(), BODY)


def test_a_changed_body_is_refused() -> None:
    with pytest.raises(SignatureError, match="x-ms-content-sha256"):
        verify_request(KEY, "POST", PATH, [HOST], _signed(), BODY + b" ")


def test_another_host_is_refused() -> None:
    with pytest.raises(SignatureError, match="signature"):
        verify_request(KEY, "POST", PATH, ["127.0.0.1:9999"], _signed(), BODY)


def test_another_path_is_refused() -> None:
    with pytest.raises(SignatureError, match="signature"):
        verify_request(KEY, "POST", PATH + "&x=1", [HOST], _signed(), BODY)


def test_a_date_six_minutes_old_is_refused() -> None:
    stale = http_date(datetime.now(UTC) - timedelta(minutes=6))
    with pytest.raises(SignatureError, match="5 minutes"):
        verify_request(KEY, "POST", PATH, [HOST], _signed(date=stale), BODY)


def test_a_date_four_minutes_off_is_accepted() -> None:
    skewed = http_date(datetime.now(UTC) + timedelta(minutes=4))
    verify_request(KEY, "POST", PATH, [HOST], _signed(date=skewed), BODY)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer abc",
        "HMAC-SHA256 garbage",
        "HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature=abc",
    ],
)
def test_malformed_authorization_is_refused(authorization: str | None) -> None:
    headers = _signed()
    del headers["Authorization"]
    if authorization is not None:
        headers["Authorization"] = authorization
    with pytest.raises(SignatureError):
        verify_request(KEY, "POST", PATH, [HOST], headers, BODY)


def test_an_unparseable_date_is_refused() -> None:
    headers = _signed()
    headers["x-ms-date"] = "yesterday"
    with pytest.raises(SignatureError, match="RFC 1123"):
        verify_request(KEY, "POST", PATH, [HOST], headers, BODY)
