"""Why a request was not let in. Every `reason` is safe to send back: it never holds a credential.

SecurityError                   base; `reason` is a short, caller-safe explanation
├── AuthenticationError         the caller did not prove who it is            -> 401
│   ├── MissingCredentials      no Authorization header, API key or secret
│   ├── InvalidCredentials      an API key or shared secret that does not match
│   └── InvalidToken            a bearer token that does not verify
│       ├── MalformedToken      not a JWT, no key id, unreadable claims
│       ├── UnsupportedAlgorithm  anything but RS256 (`none`, HS256, ...)
│       ├── UnknownSigningKey   the key id is not in the key set, even after a refresh
│       ├── BadSignature        the signature does not match the key
│       ├── TokenExpired        `exp` is past (beyond the leeway)
│       ├── TokenNotYetValid    `nbf` or `iat` is in the future (beyond the leeway)
│       ├── WrongIssuer         `iss` is not the expected issuer
│       ├── WrongAudience       `aud` is not this resource
│       └── MissingClaim        a required claim (`exp`, `iss`, `aud`) is absent
└── KeySetUnavailable           the signing keys cannot be fetched and no cached
                                key matches: our problem, not the caller's  -> 503

Names say what went wrong, httpx style (`TokenExpired`, not `TokenExpiredError`).
"""

from __future__ import annotations


class SecurityError(Exception):
    """Base of every authentication failure; `reason` may be shown to the caller."""

    default_reason = "unauthorized"

    def __init__(self, reason: str | None = None) -> None:
        self.reason = reason if reason is not None else self.default_reason
        super().__init__(self.reason)


class AuthenticationError(SecurityError):
    """The request carries no valid credentials (HTTP 401)."""


class MissingCredentials(AuthenticationError):
    default_reason = "missing credentials"


class InvalidCredentials(AuthenticationError):
    default_reason = "invalid credentials"


class InvalidToken(AuthenticationError):
    default_reason = "invalid token"


class MalformedToken(InvalidToken):
    default_reason = "malformed token"


class UnsupportedAlgorithm(InvalidToken):
    default_reason = "unsupported token algorithm"


class UnknownSigningKey(InvalidToken):
    default_reason = "unknown signing key"


class BadSignature(InvalidToken):
    default_reason = "bad token signature"


class TokenExpired(InvalidToken):
    default_reason = "token expired"


class TokenNotYetValid(InvalidToken):
    default_reason = "token not yet valid"


class WrongIssuer(InvalidToken):
    default_reason = "wrong issuer"


class WrongAudience(InvalidToken):
    default_reason = "wrong audience"


class MissingClaim(InvalidToken):
    default_reason = "token lacks a required claim"


class KeySetUnavailable(SecurityError):
    """The signing keys could not be fetched and none cached matches (HTTP 503)."""

    default_reason = "signing keys unavailable"
