"""Verifying ACS bearer tokens: each way a token can be wrong is rejected with its own reason."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from app.security.acs_tokens import TokenVerifier, bearer_token
from app.security.errors import (
    BadSignature,
    MalformedToken,
    MissingClaim,
    MissingCredentials,
    SecurityError,
    TokenExpired,
    TokenNotYetValid,
    UnknownSigningKey,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
)
from app.security.signing import TokenSigner
from tests.security.conftest import AUDIENCE, ISSUER, LEEWAY_S


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    claims: dict[str, object] = {"iss": ISSUER, "aud": AUDIENCE, "iat": now, "exp": now + 300}
    claims.update(overrides)
    return claims


async def _reason(verifier: TokenVerifier, token: str) -> tuple[type[SecurityError], str]:
    with pytest.raises(SecurityError) as caught:
        await verifier.verify(token)
    return type(caught.value), caught.value.reason


async def test_a_valid_token_is_accepted(verifier: TokenVerifier, signer: TokenSigner) -> None:
    claims = await verifier.verify_authorization(f"Bearer {signer.mint()}")
    assert claims["aud"] == AUDIENCE
    assert claims["iss"] == ISSUER


async def test_a_token_expired_within_the_leeway_is_accepted(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    token = signer.mint(issued_at=time.time() - 300 - LEEWAY_S // 2, lifetime_s=300)
    assert (await verifier.verify(token))["aud"] == AUDIENCE


async def test_wrong_issuer_is_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    token = signer.mint(issuer="https://evil.example")
    assert await _reason(verifier, token) == (WrongIssuer, "wrong issuer")


async def test_wrong_audience_is_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    token = signer.mint(audience="another-resource")
    assert await _reason(verifier, token) == (WrongAudience, "wrong audience")


async def test_expired_token_is_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    token = signer.mint(issued_at=time.time() - 1000, lifetime_s=300)
    assert await _reason(verifier, token) == (TokenExpired, "token expired")


async def test_not_yet_valid_token_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    token = signer.mint(not_before=time.time() + 600)
    assert await _reason(verifier, token) == (TokenNotYetValid, "token not yet valid")


async def test_token_issued_in_the_future_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    token = signer.mint(issued_at=time.time() + 600)
    assert (await _reason(verifier, token))[0] is TokenNotYetValid


async def test_token_without_expiry_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    token = signer.mint(claims={"exp": None})
    assert await _reason(verifier, token) == (MissingClaim, "token lacks the exp claim")


async def test_signature_by_another_key_with_the_same_kid_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    impostor = TokenSigner(audience=AUDIENCE, issuer=ISSUER, kid=signer.kid)
    assert await _reason(verifier, impostor.mint()) == (BadSignature, "bad token signature")


async def test_tampered_claims_are_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    header, _, signature = signer.mint().split(".")
    forged = _b64(json.dumps(_claims(aud=AUDIENCE, role="admin")).encode())
    assert (await _reason(verifier, f"{header}.{forged}.{signature}"))[0] is BadSignature


async def test_unknown_kid_is_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    token = signer.mint(kid="not-a-published-key")
    assert await _reason(verifier, token) == (UnknownSigningKey, "unknown signing key")


async def test_alg_none_is_rejected(verifier: TokenVerifier, signer: TokenSigner) -> None:
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": signer.kid}).encode())
    token = f"{header}.{_b64(json.dumps(_claims()).encode())}."
    assert await _reason(verifier, token) == (UnsupportedAlgorithm, "unsupported token algorithm")


async def test_hs256_signed_with_the_public_key_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    # The classic confusion attack: HMAC keyed with the (public) RSA key as the shared secret.
    public_pem = jwt.PyJWK(signer.jwks()["keys"][0]).key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": signer.kid}).encode())
    payload = _b64(json.dumps(_claims()).encode())
    mac = hmac.new(public_pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    token = f"{header}.{payload}.{_b64(mac)}"
    assert await _reason(verifier, token) == (UnsupportedAlgorithm, "unsupported token algorithm")


@pytest.mark.parametrize(
    "garbage",
    ["not-a-token", "a.b.c", "eyJhbGciOiJSUzI1NiJ9..", "....", "x" * 20_000, "ü.ü.ü"],
)
async def test_garbage_is_rejected_as_malformed(verifier: TokenVerifier, garbage: str) -> None:
    assert (await _reason(verifier, garbage))[0] is MalformedToken


async def test_token_without_kid_is_rejected(verifier: TokenVerifier) -> None:
    header = _b64(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    token = f"{header}.{_b64(json.dumps(_claims()).encode())}.{_b64(b'sig')}"
    assert await _reason(verifier, token) == (MalformedToken, "token has no key id")


async def test_missing_authorization_header_is_rejected(verifier: TokenVerifier) -> None:
    with pytest.raises(MissingCredentials, match="missing bearer token"):
        await verifier.verify_authorization(None)


async def test_non_bearer_authorization_is_rejected(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    with pytest.raises(MalformedToken, match="not a bearer token"):
        await verifier.verify_authorization(f"Basic {signer.mint()}")


async def test_rejection_reasons_never_quote_the_token(
    verifier: TokenVerifier, signer: TokenSigner
) -> None:
    token = signer.mint(audience="another-resource")
    with pytest.raises(SecurityError) as caught:
        await verifier.verify_authorization(f"Bearer {token}")
    assert token not in str(caught.value)
    assert token.split(".")[1] not in caught.value.reason


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Bearer abc", "abc"),
        ("bearer   abc ", "abc"),
        ("Bearer", None),
        ("Bearer a b", None),
        ("Basic abc", None),
        ("", None),
        (None, None),
    ],
)
def test_bearer_token_extraction(header: str | None, expected: str | None) -> None:
    assert bearer_token(header) == expected
