"""Plug-in points of the emulator: who plays the far end of the media stream, and who signs the
tokens ACS puts on callbacks and media connections."""

from __future__ import annotations

from typing import Any, Protocol

from app.emulator.records import EmulatedCall


class MediaHandler(Protocol):
    """Opens and closes a call's media WebSocket (to `call.media_options["transportUrl"]`)."""

    async def start(self, call: EmulatedCall) -> None:
        """Connect; raise to make streaming fail (the emulator posts MediaStreamingFailed)."""
        ...

    async def stop(self, call: EmulatedCall) -> None:
        """Disconnect; called once per successful start."""
        ...


class TokenSource(Protocol):
    """Mints ACS-like RS256 bearer tokens and publishes their keys (`app.security.signing`)."""

    def mint(self) -> str: ...

    def jwks(self) -> dict[str, Any]: ...
