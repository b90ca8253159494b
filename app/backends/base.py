"""The backend seam, re-exported from `app.seam` where its plain types live.

They sit at the bottom of the layers (they import only settings), so that `app.agent`, which
the backends build on, can use them without importing the backends' package.
"""

from __future__ import annotations

from app.seam import (
    ActionAccepted,
    ActionFailed,
    AudioIn,
    Backend,
    BackendError,
    BackendEvent,
    CallActions,
    CallContext,
    CallEventIn,
    DtmfIn,
    InboundEvent,
    MediaOutput,
    StreamFormat,
    TranscriptIn,
    log_fields,
)

__all__ = [
    "ActionAccepted",
    "ActionFailed",
    "AudioIn",
    "Backend",
    "BackendError",
    "BackendEvent",
    "CallActions",
    "CallContext",
    "CallEventIn",
    "DtmfIn",
    "InboundEvent",
    "MediaOutput",
    "StreamFormat",
    "TranscriptIn",
    "log_fields",
]
