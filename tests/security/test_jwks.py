"""The remote key set: caching, refresh on rotation, single flight, rate limit, outages."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import aiohttp
import pytest

from app.security.errors import KeySetUnavailable, UnknownSigningKey
from app.security.jwks import KeySetFetchError, RemoteKeySet, parse_key_set
from app.security.signing import TokenSigner
from tests.security.conftest import JwksServer, make_verifier


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def rotating_server(rotating_signer: TokenSigner) -> AsyncIterator[JwksServer]:
    server = JwksServer(rotating_signer.jwks)
    await server.start()
    yield server
    await server.stop()


async def test_keys_are_fetched_once_and_cached(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session)
    for _ in range(5):
        await verifier.verify(rotating_signer.mint())
    assert rotating_server.requests == 1


async def test_a_rotated_key_is_picked_up(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0)
    await verifier.verify(rotating_signer.mint())
    rotating_signer.rotate(retire_previous=True)
    claims = await verifier.verify(rotating_signer.mint())
    assert claims["aud"] == rotating_signer.audience
    assert rotating_server.requests == 2


async def test_a_burst_with_a_new_kid_causes_one_fetch(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0)
    await verifier.verify(rotating_signer.mint())
    rotating_signer.rotate()
    token = rotating_signer.mint()
    rotating_server.delay_s = 0.05  # keep the fetch in flight while the burst piles up
    results = await asyncio.gather(*(verifier.verify(token) for _ in range(50)))
    assert len(results) == 50
    assert rotating_server.requests == 2


async def test_a_burst_with_an_unknown_kid_causes_one_fetch(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0)
    await verifier.verify(rotating_signer.mint())
    token = rotating_signer.mint(kid="never-published")
    rotating_server.delay_s = 0.05
    results = await asyncio.gather(
        *(verifier.verify(token) for _ in range(50)), return_exceptions=True
    )
    assert all(isinstance(result, UnknownSigningKey) for result in results)
    assert rotating_server.requests == 2


async def test_unknown_kids_refetch_at_most_once_per_interval(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    clock = FakeClock()
    keys = RemoteKeySet(session, rotating_server.url, min_refresh_interval_s=15, clock=clock)
    await keys.get_key(rotating_signer.kid)
    for kid in ("unknown-1", "unknown-2", "unknown-3"):
        with pytest.raises(UnknownSigningKey):
            await keys.get_key(kid)
    assert rotating_server.requests == 1
    clock.now += 15
    new_kid = rotating_signer.rotate()
    assert (await keys.get_key(new_kid)).key_id == new_kid
    assert rotating_server.requests == 2


async def test_cached_keys_keep_serving_while_the_server_is_down(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    # max_age 0: every lookup tries to refresh, and every refresh fails.
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0, max_age_s=0)
    await verifier.verify(rotating_signer.mint())
    await rotating_server.stop()
    claims = await verifier.verify(rotating_signer.mint())
    assert claims["aud"] == rotating_signer.audience
    assert verifier.keys.fetch_attempts == 2


async def test_cached_keys_keep_serving_when_the_server_answers_errors(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0, max_age_s=0)
    await verifier.verify(rotating_signer.mint())
    rotating_server.failing = True
    await verifier.verify(rotating_signer.mint())
    assert rotating_server.requests == 2


async def test_an_unknown_kid_while_the_server_is_down_is_unavailable_not_unauthorized(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    verifier = make_verifier(rotating_server, session, min_refresh_interval_s=0)
    await verifier.verify(rotating_signer.mint())
    rotating_server.failing = True
    with pytest.raises(KeySetUnavailable, match="signing keys unavailable"):
        await verifier.verify(rotating_signer.mint(kid="rotated-while-down"))


async def test_no_cached_keys_and_server_down_is_unavailable(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    await rotating_server.stop()
    verifier = make_verifier(rotating_server, session)
    with pytest.raises(KeySetUnavailable):
        await verifier.verify(rotating_signer.mint())


async def test_a_stale_key_set_is_refreshed(
    rotating_server: JwksServer, session: aiohttp.ClientSession, rotating_signer: TokenSigner
) -> None:
    clock = FakeClock()
    keys = RemoteKeySet(session, rotating_server.url, max_age_s=3600, clock=clock)
    old_kid = rotating_signer.kid
    await keys.get_key(old_kid)
    rotating_signer.rotate(retire_previous=True)
    clock.now += 3601
    with pytest.raises(UnknownSigningKey):
        await keys.get_key(old_kid)  # revoked keys stop verifying once the set is refreshed
    assert rotating_server.requests == 2


def test_only_rs256_signing_keys_are_kept(rotating_signer: TokenSigner) -> None:
    rsa_key = rotating_signer.jwks()["keys"][0]
    document = {
        "keys": [
            rsa_key,
            {**rsa_key, "kid": "encryption", "use": "enc"},
            {**rsa_key, "kid": "rs512", "alg": "RS512"},
            {**rsa_key, "kid": ""},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
            "not a key",
        ]
    }
    assert list(parse_key_set(document)) == [rotating_signer.kid]


@pytest.mark.parametrize(
    "document", [None, [], {"keys": "nope"}, {"keys": []}, {"keys": [{"kty": "EC"}]}]
)
def test_a_document_without_usable_keys_is_refused(document: object) -> None:
    with pytest.raises(KeySetFetchError):
        parse_key_set(document)
