"""Verifying RS256 bearer tokens: the ones ACS puts on callbacks and media WebSocket upgrades, and
the Entra ID tokens Event Grid can deliver with.

Failures raise the `app.security.errors` tree; no reason ever quotes the token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
import jwt

from app.security.errors import (
    BadSignature,
    InvalidToken,
    MalformedToken,
    MissingClaim,
    MissingCredentials,
    TokenExpired,
    TokenNotYetValid,
    UnsupportedAlgorithm,
    WrongAudience,
    WrongIssuer,
)
from app.security.jwks import SIGNING_ALGORITHM, RemoteKeySet
from app.settings import Settings

# ACS tokens are a few hundred bytes and Entra ones a few KiB: anything far bigger is not a token.
MAX_TOKEN_CHARS = 16 * 1024
REQUIRED_CLAIMS = ["exp", "iss", "aud"]
ENTRA_AUTHORITY = "https://login.microsoftonline.com"

Claims = dict[str, Any]


class TokenVerifier:
    """Checks a JWT's RS256 signature against a remote key set, then its issuer, audience and
    validity window (`exp`, `nbf`, `iat`, each with `leeway_s`)."""

    def __init__(
        self,
        keys: RemoteKeySet,
        *,
        issuers: Sequence[str],
        audience: str,
        leeway_s: float,
    ) -> None:
        if not issuers or not audience:
            raise ValueError("a token verifier needs an issuer and an audience")
        self.keys = keys
        self._issuers = list(issuers)
        self._audience = audience
        self._leeway_s = leeway_s

    async def verify_authorization(self, authorization: str | None) -> Claims:
        """Verify the token of an `Authorization: Bearer ...` header value."""
        if not authorization or not authorization.strip():
            raise MissingCredentials("missing bearer token")
        token = bearer_token(authorization)
        if token is None:
            raise MalformedToken("authorization is not a bearer token")
        return await self.verify(token)

    async def verify(self, token: str) -> Claims:
        """The token's claims once every check passed."""
        if len(token) > MAX_TOKEN_CHARS:
            raise MalformedToken("token too long")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise MalformedToken() from exc
        if header.get("alg") != SIGNING_ALGORITHM:
            raise UnsupportedAlgorithm()
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise MalformedToken("token has no key id")
        key = await self.keys.get_key(kid)
        try:
            claims: Claims = jwt.decode(
                token,
                key=key,
                algorithms=[SIGNING_ALGORITHM],
                audience=self._audience,
                issuer=self._issuers,
                leeway=self._leeway_s,
                options={"require": REQUIRED_CLAIMS, "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise _translate(exc) from exc
        return claims


def bearer_token(authorization: str | None) -> str | None:
    """The credential of an `Authorization: Bearer <credential>` value, else None."""
    if authorization is None:
        return None
    scheme, _, credential = authorization.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        return None
    return credential


def acs_token_verifier(settings: Settings, session: aiohttp.ClientSession) -> TokenVerifier | None:
    """The verifier of ACS callback and media tokens, or None while ACS_RESOURCE_ID is unset."""
    if not settings.acs_resource_id:
        return None
    return TokenVerifier(
        RemoteKeySet(
            session, settings.acs_jwks_url, min_refresh_interval_s=settings.jwks_min_refresh_s
        ),
        issuers=[settings.acs_jwt_issuer],
        audience=settings.acs_resource_id,
        leeway_s=settings.acs_jwt_leeway_s,
    )


def entra_token_verifier(
    settings: Settings, session: aiohttp.ClientSession, *, authority: str = ENTRA_AUTHORITY
) -> TokenVerifier | None:
    """The verifier of Event Grid's Entra ID delivery tokens, or None unless both
    EVENTGRID_ENTRA_TENANT_ID and EVENTGRID_ENTRA_AUDIENCE are set."""
    tenant = settings.eventgrid_entra_tenant_id
    audience = settings.eventgrid_entra_audience
    if not tenant or not audience:
        return None
    authority = authority.rstrip("/")
    return TokenVerifier(
        RemoteKeySet(
            session,
            f"{authority}/{tenant}/discovery/v2.0/keys",
            min_refresh_interval_s=settings.jwks_min_refresh_s,
        ),
        # v2.0 and v1.0 access tokens name their issuer differently; which one arrives depends
        # on the app registration's accessTokenAcceptedVersion.
        issuers=[f"{authority}/{tenant}/v2.0", f"https://sts.windows.net/{tenant}/"],
        audience=audience,
        leeway_s=settings.acs_jwt_leeway_s,
    )


def _translate(exc: jwt.PyJWTError) -> InvalidToken:
    # Order matters: several of PyJWT's exceptions subclass others.
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenExpired()
    if isinstance(exc, jwt.ImmatureSignatureError):
        return TokenNotYetValid()
    if isinstance(exc, jwt.InvalidAudienceError):
        return WrongAudience()
    if isinstance(exc, jwt.InvalidIssuerError):
        return WrongIssuer()
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return MissingClaim(f"token lacks the {exc.claim} claim")
    if isinstance(exc, jwt.InvalidSignatureError):
        return BadSignature()
    if isinstance(exc, jwt.InvalidAlgorithmError):
        return UnsupportedAlgorithm()
    if isinstance(exc, jwt.DecodeError | jwt.InvalidIssuedAtError):
        return MalformedToken()
    return InvalidToken()
