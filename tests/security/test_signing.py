"""TokenSigner: the key pair the emulator and tests sign ACS-like tokens with."""

from __future__ import annotations

import time

import jwt

from app.security.signing import TokenSigner
from tests.security.conftest import AUDIENCE


def test_signer_publishes_every_key_until_retired() -> None:
    signer = TokenSigner(audience=AUDIENCE)
    first = signer.kid
    second = signer.rotate()
    assert [key["kid"] for key in signer.jwks()["keys"]] == [first, second]
    signer.rotate(retire_previous=True)
    assert first in [key["kid"] for key in signer.jwks()["keys"]]
    assert second not in [key["kid"] for key in signer.jwks()["keys"]]
    assert all("d" not in key for key in signer.jwks()["keys"])  # public halves only


def test_signer_mints_acs_shaped_claims() -> None:
    signer = TokenSigner(audience=AUDIENCE)
    header = jwt.get_unverified_header(signer.mint())
    claims = jwt.decode(signer.mint(), options={"verify_signature": False})
    assert header == {"alg": "RS256", "kid": signer.kid, "typ": "JWT"}
    assert claims["aud"] == AUDIENCE
    assert claims["iss"] == "https://acscallautomation.communication.azure.com"
    assert claims["nbf"] == claims["iat"] <= time.time() < claims["exp"]
