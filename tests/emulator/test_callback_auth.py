"""Callbacks signed like ACS's: a bearer JWT whose keys the emulator publishes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import jwt
import pytest
from azure.communication.callautomation.aio import CallAutomationClient

from app.emulator import AcsEmulator
from app.security.signing import TokenSigner
from tests.emulator.conftest import HttpSink, answer_incoming

AUDIENCE = "6d889502-3d7a-41a8-befa-d21fd80e8767"


@pytest.fixture(scope="module")
def signer() -> TokenSigner:
    return TokenSigner(audience=AUDIENCE)


@pytest.fixture
async def emulator(signer: TokenSigner) -> AsyncIterator[AcsEmulator]:
    async with AcsEmulator(token_source=signer) as emu:
        yield emu


async def test_callbacks_carry_a_token_verifiable_with_the_published_keys(
    emulator: AcsEmulator, client: CallAutomationClient, sink: HttpSink, signer: TokenSigner
) -> None:
    await answer_incoming(emulator, client, sink)
    await emulator.settle()
    async with (
        aiohttp.ClientSession() as session,
        session.get(emulator.endpoint + "/calling/keys") as response,
    ):
        jwks = await response.json()

    token = sink.posts()[0].headers["Authorization"].removeprefix("Bearer ")
    key = jwt.PyJWKSet.from_dict(jwks)[jwt.get_unverified_header(token)["kid"]]
    claims = jwt.decode(token, key, algorithms=["RS256"], audience=AUDIENCE, issuer=signer.issuer)
    assert claims["aud"] == AUDIENCE
