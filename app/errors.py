"""The JSON body of every error answer, shared by the HTTP edge and the security middleware."""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, **detail: Any) -> dict[str, Any]:
    """The JSON body of every error answer: `{"error": {code, message[, detail]}}`."""
    body: dict[str, Any] = {"code": code, "message": message}
    if detail:
        body["detail"] = detail
    return {"error": body}
