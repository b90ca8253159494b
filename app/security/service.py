"""The app's security checks, built once per app from the settings; a check left None is off."""

from __future__ import annotations

from contextlib import AsyncExitStack
from dataclasses import dataclass

import aiohttp

from app.security.acs_tokens import TokenVerifier, acs_token_verifier, entra_token_verifier
from app.security.api_keys import ControlKeyCheck, EventGridCheck
from app.settings import Settings

KEY_SET_USER_AGENT = "acs-bridge (signing key refresh)"


@dataclass(frozen=True, slots=True)
class Security:
    """What the route dependencies in `app.security.dependencies` consult."""

    acs_tokens: TokenVerifier | None  # callbacks and the media WebSocket upgrade
    control_key: ControlKeyCheck | None  # every /api/calls route
    eventgrid: EventGridCheck | None  # the Event Grid webhook, handshakes included

    @classmethod
    def disabled(cls) -> Security:
        """Every check off: local development only."""
        return cls(acs_tokens=None, control_key=None, eventgrid=None)


async def build_security(settings: Settings, stack: AsyncExitStack) -> Security:
    """Build the checks the settings ask for; `stack` closes their HTTP session."""
    session = aiohttp.ClientSession(headers={"User-Agent": KEY_SET_USER_AGENT})
    stack.push_async_callback(session.close)
    entra = entra_token_verifier(settings, session)
    secret = settings.eventgrid_secret.get_secret_value() if settings.eventgrid_secret else None
    control_key = settings.control_api_key.get_secret_value() if settings.control_api_key else None
    return Security(
        acs_tokens=acs_token_verifier(settings, session),
        control_key=ControlKeyCheck(control_key) if control_key else None,
        eventgrid=EventGridCheck(secret=secret, entra=entra) if secret or entra else None,
    )
