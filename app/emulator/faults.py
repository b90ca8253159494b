"""Faults injected on demand: error answers, slow answers, failing media starts, and
transfers or DTMF sends that fail after their 202 (a `CallTransferFailed` or
`SendDtmfTonesFailed` callback instead of the success event)."""

from __future__ import annotations

import http
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal, get_args

Operation = Literal[
    "answer",
    "create",
    "get",
    "startMediaStreaming",
    "stopMediaStreaming",
    "hangup",
    "terminate",
    "transferToParticipant",
    "sendDtmfTones",
]
OPERATIONS: frozenset[str] = frozenset(get_args(Operation))
DEFAULT_MEDIA_FAILURE = "initialWebSocketConnectionFailed"
# No sourced example of either failure's resultInformation was found: these defaults are
# assumptions (500/7504 for a transfer, a generic 500/9999 for DTMF); pass real ones if known.
DEFAULT_TRANSFER_FAILURE_CODE = 500
DEFAULT_TRANSFER_FAILURE_SUB_CODE = 7504
DEFAULT_TRANSFER_FAILURE_MESSAGE = "Action failed, the transfer could not be completed."
DEFAULT_DTMF_FAILURE_CODE = 500
DEFAULT_DTMF_FAILURE_SUB_CODE = 9999
DEFAULT_DTMF_FAILURE_MESSAGE = "Send DTMF couldn't be completed successfully."


@dataclass(frozen=True)
class ActionFailure:
    """The `resultInformation` of an action's failure callback."""

    code: int
    sub_code: int
    message: str

    def result_information(self) -> dict[str, Any]:
        return {"code": self.code, "subCode": self.sub_code, "message": self.message}


DEFAULT_TRANSFER_FAILURE = ActionFailure(
    DEFAULT_TRANSFER_FAILURE_CODE,
    DEFAULT_TRANSFER_FAILURE_SUB_CODE,
    DEFAULT_TRANSFER_FAILURE_MESSAGE,
)
DEFAULT_DTMF_FAILURE = ActionFailure(
    DEFAULT_DTMF_FAILURE_CODE, DEFAULT_DTMF_FAILURE_SUB_CODE, DEFAULT_DTMF_FAILURE_MESSAGE
)


@dataclass
class Fault:
    """Answer the next `times` requests of an operation with `status` after `delay_s`.

    A status below 400 only delays: the request is then served normally.
    """

    status: int = 500
    times: int = 1
    delay_s: float = 0.0
    retry_after: float | None = None
    error_code: str | None = None

    @property
    def is_error(self) -> bool:
        return self.status >= 400

    def error_body(self) -> dict[str, Any]:
        code = self.error_code or _default_code(self.status)
        return {"error": {"code": code, "message": f"Injected fault: HTTP {self.status}."}}

    def headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        seconds = self.retry_after
        value = str(int(seconds)) if float(seconds).is_integer() else f"{seconds:g}"
        return {"Retry-After": value}


class FaultPlan:
    """Queued faults per operation, consumed first in, first out."""

    def __init__(self) -> None:
        self._faults: dict[str, deque[Fault]] = {}
        self._media_failures: deque[str] = deque()
        self._transfer_failures: deque[ActionFailure] = deque()
        self._dtmf_failures: deque[ActionFailure] = deque()

    def add(self, operation: str, fault: Fault) -> None:
        if operation not in OPERATIONS:
            raise ValueError(
                f"unknown operation {operation!r}; expected one of {sorted(OPERATIONS)}"
            )
        if fault.times < 1:
            raise ValueError("times must be at least 1")
        self._faults.setdefault(operation, deque()).append(fault)

    def take(self, operation: str) -> Fault | None:
        """The fault for this request of `operation`, if one is pending."""
        queue = self._faults.get(operation)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        return fault

    def fail_next_media_start(self, details: str = DEFAULT_MEDIA_FAILURE) -> None:
        self._media_failures.append(details)

    def take_media_failure(self) -> str | None:
        """The status details of the next media start's failure, if one is planned."""
        return self._media_failures.popleft() if self._media_failures else None

    def fail_next_transfer(self, failure: ActionFailure = DEFAULT_TRANSFER_FAILURE) -> None:
        self._transfer_failures.append(failure)

    def take_transfer_failure(self) -> ActionFailure | None:
        """How the next accepted transfer fails (CallTransferFailed), if planned."""
        return self._transfer_failures.popleft() if self._transfer_failures else None

    def fail_next_send_dtmf(self, failure: ActionFailure = DEFAULT_DTMF_FAILURE) -> None:
        self._dtmf_failures.append(failure)

    def take_send_dtmf_failure(self) -> ActionFailure | None:
        """How the next accepted DTMF send fails (SendDtmfTonesFailed), if planned."""
        return self._dtmf_failures.popleft() if self._dtmf_failures else None

    def clear(self) -> None:
        self._faults.clear()
        self._media_failures.clear()
        self._transfer_failures.clear()
        self._dtmf_failures.clear()


def _default_code(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase.replace(" ", "")
    except ValueError:
        return f"Http{status}"
