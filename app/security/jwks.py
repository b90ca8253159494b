"""A JSON Web Key Set fetched over HTTP, cached, and refreshed when an unknown key id shows up.

PyJWT's own `PyJWKClient` fetches with urllib and would block the event loop; this fetches with
aiohttp and only uses PyJWT to turn each JWK into a key object.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp
from jwt import PyJWK, PyJWTError

from app.security.errors import KeySetUnavailable, UnknownSigningKey

log = logging.getLogger(__name__)

SIGNING_ALGORITHM = "RS256"
MAX_KEY_SET_BYTES = 256 * 1024


class KeySetFetchError(Exception):
    """The key set could not be fetched or held no usable key (logged, never shown to callers)."""


class RemoteKeySet:
    """RS256 signing keys published at `url`, looked up by key id.

    Keys are cached. An unknown key id (a rotation) or a set older than `max_age_s` triggers a
    refetch, at most once per `min_refresh_interval_s`, and concurrent lookups share one fetch.
    When a fetch fails the cached keys keep serving.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        url: str,
        *,
        min_refresh_interval_s: float = 15.0,
        max_age_s: float = 3600.0,
        fetch_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self._session = session
        self._min_refresh_interval_s = min_refresh_interval_s
        self._max_age_s = max_age_s
        self._timeout = aiohttp.ClientTimeout(total=fetch_timeout_s)
        self._clock = clock
        self._keys: dict[str, PyJWK] = {}
        self._fetched_at: float | None = None
        self._last_attempt_at: float | None = None
        self._last_attempt_failed = False
        self._attempts = 0
        self._completed = 0
        self._lock = asyncio.Lock()

    @property
    def fetch_attempts(self) -> int:
        """How many times the key set was requested from `url` (for metrics and tests)."""
        return self._attempts

    async def get_key(self, kid: str) -> PyJWK:
        """The key with id `kid`; refetches the set first if `kid` is unknown or the set is old."""
        key = self._keys.get(kid)
        if key is not None and not self._is_stale():
            return key
        completed_before = self._completed
        async with self._lock:
            # Single flight: a lookup that waited on the lock while another one fetched reuses
            # that fetch's result instead of fetching again.
            if self._completed == completed_before and self._may_fetch():
                await self._refresh()
            key = self._keys.get(kid)
        if key is not None:
            return key
        if self._last_attempt_failed:
            raise KeySetUnavailable()
        raise UnknownSigningKey()

    def _is_stale(self) -> bool:
        return self._fetched_at is None or self._clock() - self._fetched_at > self._max_age_s

    def _may_fetch(self) -> bool:
        if self._last_attempt_at is None:
            return True
        return self._clock() - self._last_attempt_at >= self._min_refresh_interval_s

    async def _refresh(self) -> None:
        previous_attempt_at = self._last_attempt_at
        self._attempts += 1
        self._last_attempt_at = self._clock()
        try:
            keys = parse_key_set(await self._fetch())
        except asyncio.CancelledError:
            # The lookup that fetched went away: the next waiter fetches instead of being
            # rate-limited by a fetch that never finished.
            self._last_attempt_at = previous_attempt_at
            raise
        except KeySetFetchError as exc:
            self._completed += 1
            self._last_attempt_failed = True
            log.warning(
                "signing key set %s not refreshed (%s); %d cached keys still in use",
                self.url,
                exc,
                len(self._keys),
            )
            return
        self._completed += 1
        self._keys = keys
        self._fetched_at = self._clock()
        self._last_attempt_failed = False
        log.info("signing key set %s refreshed: %d keys", self.url, len(keys))

    async def _fetch(self) -> Any:
        try:
            async with self._session.get(
                self.url, timeout=self._timeout, headers={"Accept": "application/json"}
            ) as response:
                if response.status != 200:
                    raise KeySetFetchError(f"HTTP {response.status}")
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > MAX_KEY_SET_BYTES:
                        raise KeySetFetchError("key set too large")
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise KeySetFetchError(type(exc).__name__) from exc
        try:
            return json.loads(body)
        except ValueError as exc:
            raise KeySetFetchError("key set is not JSON") from exc


def parse_key_set(document: Any) -> dict[str, PyJWK]:
    """The RS256 signing keys of a JWKS document, by key id; other keys are skipped."""
    if not isinstance(document, Mapping) or not isinstance(document.get("keys"), list):
        raise KeySetFetchError("not a JSON Web Key Set")
    keys: dict[str, PyJWK] = {}
    for jwk in document["keys"]:
        if not _is_rs256_signing_key(jwk):
            continue
        try:
            # Binding the algorithm here means a key can only ever verify RS256 signatures.
            keys[jwk["kid"]] = PyJWK(jwk, algorithm=SIGNING_ALGORITHM)
        except PyJWTError:
            continue
    if not keys:
        raise KeySetFetchError("no usable RS256 signing key")
    return keys


def _is_rs256_signing_key(jwk: Any) -> bool:
    return (
        isinstance(jwk, Mapping)
        and jwk.get("kty") == "RSA"
        and isinstance(jwk.get("kid"), str)
        and bool(jwk["kid"])
        and jwk.get("use", "sig") == "sig"
        and jwk.get("alg", SIGNING_ALGORITHM) == SIGNING_ALGORITHM
    )
