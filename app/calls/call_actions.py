"""The `CallActions` a backend gets for its call: hang up, transfer, DTMF, within the settings.

A backend (and so a model, or a downstream service) may only transfer to a destination the
operator configured in TRANSFER_TARGETS, by its name (or the configured target itself): a
caller must never talk an agent into dialling an arbitrary or premium number.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from app.backends.base import ActionAccepted, ActionFailed
from app.calls.control import CallControlError
from app.calls.models import EndedBy
from app.calls.operations import CallOperations

log = logging.getLogger(__name__)


class BackendCallActions:
    """One call's actions, through the control service (and so the official SDK)."""

    def __init__(
        self,
        operations: CallOperations,
        call_connection_id: str,
        transfer_targets: Mapping[str, str],
        *,
        by: str,
    ) -> None:
        # `by`: "agent" (a backend's, and so a model's, actions) or "failover" (the bridge's own).
        EndedBy(by)
        self._operations = operations
        self._call_id = call_connection_id
        self._targets = dict(transfer_targets)
        self._by = by

    async def hang_up(self) -> ActionAccepted:
        try:
            await self._operations.hang_up(self._call_id, for_everyone=True, by=EndedBy(self._by))
        except CallControlError as exc:
            raise ActionFailed(exc.code, str(exc)) from exc
        return ActionAccepted("hang_up", "hang_up")

    async def transfer(self, target: str) -> ActionAccepted:
        name, destination = self._destination(target)
        try:
            action = await self._operations.transfer(
                self._call_id, destination, label=name, by=self._by
            )
        except CallControlError as exc:
            raise ActionFailed(exc.code, str(exc)) from exc
        return ActionAccepted("transfer", action.operation_context)

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        try:
            action = await self._operations.send_dtmf(self._call_id, tones, by=self._by)
        except CallControlError as exc:
            raise ActionFailed(exc.code, str(exc)) from exc
        return ActionAccepted("send_dtmf", action.operation_context)

    def _destination(self, target: str) -> tuple[str, str]:
        if target in self._targets:
            return target, self._targets[target]
        for name, configured in self._targets.items():
            if configured == target:
                return name, configured
        log.warning("refused a transfer to an unconfigured destination", extra={"target": target})
        names = ", ".join(sorted(self._targets)) or "none are configured (TRANSFER_TARGETS)"
        raise ActionFailed(
            "destination_not_allowed", f"transfers may only go to configured destinations: {names}"
        )
