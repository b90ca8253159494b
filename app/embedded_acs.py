"""The ACS emulator as the service's own ACS, for a first run with no Azure account.

`acs-bridge serve` with no ACS settings, and `acs-bridge demo`, start one in the same process:
signed callbacks and media connections, with verification on, exactly as in the tests.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from pydantic import SecretStr

from app.emulator import AcsEmulator
from app.emulator.media_client import MediaClient, StreamScript
from app.security.signing import TokenSigner
from app.settings import DEFAULT_ACS_JWT_ISSUER, Settings


@dataclass(frozen=True, slots=True)
class EmbeddedAcs:
    """A running emulator and the settings that make the service use it."""

    emulator: AcsEmulator
    media: MediaClient
    settings: Settings


@asynccontextmanager
async def embedded_acs(
    settings: Settings, *, public_base_url: str, script: StreamScript | None = None
) -> AsyncIterator[EmbeddedAcs]:
    """Start an emulator on 127.0.0.1 and return `settings` pointed at it."""
    resource_id = f"emulated-{secrets.token_hex(8)}"
    signer = TokenSigner(audience=resource_id)
    media = MediaClient(script or StreamScript(), token_source=signer)
    emulator = AcsEmulator(media_handler=media, token_source=signer)
    emulator.resource_id = resource_id
    async with emulator:
        updates: dict[str, object] = {
            "acs_connection_string": SecretStr(emulator.connection_string),
            "acs_resource_id": resource_id,
            "acs_jwks_url": f"{emulator.endpoint}/calling/keys",
            "acs_jwt_issuer": DEFAULT_ACS_JWT_ISSUER,
            "public_base_url": settings.public_base_url or public_base_url,
        }
        if settings.eventgrid_secret is None:
            updates["eventgrid_secret"] = SecretStr(secrets.token_urlsafe(16))
        configured = Settings.model_validate(
            {**settings.model_dump(), **updates, "allow_insecure_development": True}
        )
        yield EmbeddedAcs(emulator, media, configured)
