"""The call-end webhook's signature (pure): `t=<unix seconds>,v1=<hex HMAC-SHA256>` of
`"<t>.<raw body>"` with CALL_END_WEBHOOK_SECRET, as the README tells receivers to check it."""

from __future__ import annotations

import hashlib
import hmac

SIGNATURE_HEADER = "X-ACS-Bridge-Signature"
DELIVERY_HEADER = "X-ACS-Bridge-Delivery"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for `body` sent at `timestamp` (unix seconds)."""
    signed = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"
