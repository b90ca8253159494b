"""An Azure Communication Services Call Automation emulator: REST API with HMAC auth, ordered
CloudEvents callbacks, Event Grid IncomingCall delivery and fault injection."""

from app.emulator.faults import Fault, Operation
from app.emulator.hmac_auth import SignatureError, sign_request, verify_request
from app.emulator.media_handler import MediaHandler, TokenSource
from app.emulator.records import (
    DeliveryResult,
    EmulatedCall,
    IncomingCallDelivery,
    RecordedRequest,
    SentCallback,
    WebhookValidation,
)
from app.emulator.rest import API_VERSION
from app.emulator.runner import run_emulator
from app.emulator.server import AcsEmulator

__all__ = [
    "API_VERSION",
    "AcsEmulator",
    "DeliveryResult",
    "EmulatedCall",
    "Fault",
    "IncomingCallDelivery",
    "MediaHandler",
    "Operation",
    "RecordedRequest",
    "SentCallback",
    "SignatureError",
    "TokenSource",
    "WebhookValidation",
    "run_emulator",
    "sign_request",
    "verify_request",
]
