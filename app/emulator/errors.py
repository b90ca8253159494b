"""Errors the emulated service answers with: a status and the ACS error body
`{"error": {"code", "message"}}`."""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """An operation refused with an HTTP status, a code and a message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message)


def error_body(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def bad_request(message: str, code: str = "BadRequest") -> EmulatorError:
    return EmulatorError(400, code, message)


def call_not_found(call_connection_id: str) -> EmulatorError:
    # 8522 is the sub-code ACS gives for a call connection it does not know.
    return EmulatorError(404, "8522", f"Call connection {call_connection_id} not found.")
