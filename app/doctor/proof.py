"""The identity proof: how `acs-bridge doctor` tells this deployment from any other answer.

The service answers `GET /api/doctor/identity?nonce=N` with HMAC-SHA256(key, N). The key is
derived from secrets only this deployment has: EVENTGRID_SECRET, CONTROL_API_KEY and the ACS
access key. Doctor runs with the same settings (the same `.env` on a dev machine, the same
App Service settings in its console), so it derives the same key and checks the answer. An
old tunnel's service, another deployment, a parked page or a proxy's error page cannot
produce it, and a nonce of the doctor's own choosing means an answer cannot be replayed.
"""

from __future__ import annotations

import hashlib
import hmac

from app.settings import Settings

_KEY_CONTEXT = b"acs-bridge doctor identity v1\x00"


def identity_key(settings: Settings, *, include_acs_key: bool = True) -> bytes | None:
    """The deployment's proof key, or None when no secret is configured to derive it from.

    `include_acs_key=False` leaves out the ACS access key: the embedded emulator's key is the
    process's own, which a doctor in another process cannot know.
    """
    parts: list[str] = []
    if settings.eventgrid_secret is not None:
        parts.append("eventgrid:" + settings.eventgrid_secret.get_secret_value())
    if settings.control_api_key is not None:
        parts.append("control:" + settings.control_api_key.get_secret_value())
    connection = settings.connection_string if include_acs_key else None
    if connection is not None:
        parts.append("acs:" + connection.access_key)
    if not parts:
        return None
    material = "\x00".join(parts).encode("utf-8", "surrogateescape")
    return hashlib.sha256(_KEY_CONTEXT + material).digest()


def prove(key: bytes, nonce: str) -> str:
    """The hex HMAC of `nonce` under `key`."""
    return hmac.new(key, nonce.encode("ascii", "replace"), hashlib.sha256).hexdigest()


def proof_matches(key: bytes, nonce: str, presented: object) -> bool:
    """Whether `presented` is this deployment's proof of `nonce` (constant-time)."""
    if not isinstance(presented, str):
        return False
    return hmac.compare_digest(prove(key, nonce).encode(), presented.encode("ascii", "replace"))
