"""Shared-secret checks: the control API key and the Event Grid webhook secret.

Control API: `X-API-Key: <key>` or `Authorization: Bearer <key>`.
Event Grid: the secret rides in the subscription URL as `?code=<secret>` (Event Grid cannot add
headers to a webhook delivery), or Event Grid delivers with an Entra ID bearer token.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from app.security.acs_tokens import Claims, TokenVerifier, bearer_token
from app.security.errors import InvalidCredentials, MissingCredentials, SecurityError

API_KEY_HEADER = "X-API-Key"
EVENTGRID_SECRET_PARAM = "code"  # noqa: S105 (a parameter name, not a secret)


def secrets_match(presented: str, expected: str) -> bool:
    """Constant-time equality; hashing first keeps even the length comparison constant-time."""
    return hmac.compare_digest(
        hashlib.sha256(presented.encode("utf-8", "surrogateescape")).digest(),
        hashlib.sha256(expected.encode("utf-8", "surrogateescape")).digest(),
    )


class ControlKeyCheck:
    """The control API's key, presented in `X-API-Key` or as a bearer credential."""

    def __init__(self, key: str) -> None:
        if not key:
            raise ValueError("the control API key must not be empty")
        self._key = key

    def check(self, headers: Mapping[str, str]) -> None:
        """Raise `MissingCredentials` / `InvalidCredentials` unless the headers carry the key."""
        presented = headers.get(API_KEY_HEADER)
        if presented is None:
            presented = bearer_token(headers.get("authorization"))
        if not presented:
            raise MissingCredentials("missing API key")
        if not secrets_match(presented, self._key):
            raise InvalidCredentials("invalid API key")

    def check_with_query(self, headers: Mapping[str, str], key: str | None) -> None:
        """`check`, taking the key from `?key=` when the headers do not carry it: a browser's
        EventSource and WebSocket cannot send headers."""
        if key is not None and API_KEY_HEADER not in headers:
            headers = {API_KEY_HEADER: key}
        self.check(headers)


class EventGridCheck:
    """Event Grid deliveries and handshakes: the `?code=` secret or an Entra ID token.

    Either configured credential lets a request in; with neither presented it is refused.
    """

    def __init__(self, *, secret: str | None, entra: TokenVerifier | None) -> None:
        if not secret and entra is None:
            raise ValueError("an Event Grid check needs a secret or an Entra ID verifier")
        self._secret = secret or None
        self._entra = entra

    async def check(self, query: Mapping[str, str], headers: Mapping[str, str]) -> Claims | None:
        """The Entra token's claims, or None when the secret matched; raises when neither does."""
        failure: SecurityError | None = None
        presented = query.get(EVENTGRID_SECRET_PARAM)
        if self._secret is not None and presented is not None:
            if secrets_match(presented, self._secret):
                return None
            failure = InvalidCredentials("invalid Event Grid secret")
        authorization = headers.get("authorization")
        if self._entra is not None and authorization is not None:
            return await self._entra.verify_authorization(authorization)
        if failure is not None:
            raise failure
        raise MissingCredentials(f"missing Event Grid {self._expected()}")

    def _expected(self) -> str:
        if self._secret is not None and self._entra is not None:
            return "secret or bearer token"
        return "secret" if self._secret is not None else "bearer token"
