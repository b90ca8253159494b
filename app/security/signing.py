"""An RSA key pair that mints ACS-like tokens and publishes its JWKS: what the emulator signs
callbacks and media connections with, and what tests verify against.

Key generation is CPU work (tens of milliseconds per key): create signers at startup or in
fixtures, not on a request path.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from app.settings import DEFAULT_ACS_JWT_ISSUER

DEFAULT_LIFETIME_S = 300.0  # ACS's tokens live about five minutes


class TokenSigner:
    """Signs RS256 tokens with its current key; `rotate()` starts a new key id.

    Retired keys stay in `jwks()` (as a real issuer keeps them during a rotation) unless
    `rotate(retire_previous=True)`.
    """

    def __init__(
        self,
        *,
        audience: str,
        issuer: str = DEFAULT_ACS_JWT_ISSUER,
        lifetime_s: float = DEFAULT_LIFETIME_S,
        kid: str | None = None,
        key_size: int = 2048,
    ) -> None:
        self.audience = audience
        self.issuer = issuer
        self.lifetime_s = lifetime_s
        self._key_size = key_size
        self._keys: dict[str, rsa.RSAPrivateKey] = {}
        self.kid = self._add_key(kid)

    def jwks(self) -> dict[str, Any]:
        """The JSON Web Key Set to serve: public keys only, each with `kid`, `use` and `alg`."""
        keys = []
        for kid, private_key in self._keys.items():
            jwk: dict[str, Any] = RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
            jwk.update(kid=kid, use="sig", alg="RS256")
            keys.append(jwk)
        return {"keys": keys}

    def rotate(self, *, kid: str | None = None, retire_previous: bool = False) -> str:
        """Switch to a fresh key and return its id."""
        previous = self.kid
        self.kid = self._add_key(kid)
        if retire_previous:
            del self._keys[previous]
        return self.kid

    def mint(
        self,
        *,
        audience: str | None = None,
        issuer: str | None = None,
        lifetime_s: float | None = None,
        not_before: float | None = None,
        issued_at: float | None = None,
        claims: Mapping[str, Any] | None = None,
        kid: str | None = None,
    ) -> str:
        """A signed token; every argument overrides the signer's default (for negative tests)."""
        now = time.time()
        iat = int(issued_at if issued_at is not None else now)
        payload: dict[str, Any] = {
            "iss": issuer if issuer is not None else self.issuer,
            "aud": audience if audience is not None else self.audience,
            "iat": iat,
            "nbf": int(not_before if not_before is not None else iat),
            "exp": int(iat + (lifetime_s if lifetime_s is not None else self.lifetime_s)),
            "jti": secrets.token_hex(8),
        }
        payload.update(claims or {})
        key_id = kid if kid is not None else self.kid
        # A `kid` the signer does not hold is announced as given, signed with the current key.
        private_key = self._keys.get(key_id, self._keys[self.kid])
        return jwt.encode(payload, private_key, algorithm="RS256", headers={"kid": key_id})

    def _add_key(self, kid: str | None) -> str:
        kid = kid if kid is not None else secrets.token_urlsafe(12)
        self._keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=self._key_size)
        return kid
