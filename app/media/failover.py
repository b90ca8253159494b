"""No dead air: what the caller gets when the call has no working backend (BACKEND_FAILOVER).

After a fatal backend error at once, after BACKEND_FAILOVER_AFTER_S of continuous
unavailability otherwise, the media session that holds the call's socket plays
BACKEND_FAILOVER_PROMPT (if any) and then hangs up or transfers the call to the operator's
queue through the official SDK. It happens once per call (a claim in the call store, so two
instances never both act), never while a dropped stream is parked for its resume window.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal

from app.audio_prompt import Prompt, load_prompt
from app.backends.base import ActionFailed, CallActions
from app.calls.models import CallRecord
from app.calls.store import CallStore, StoreUnavailable
from app.calls.write_behind import StateWriter
from app.media.pacing import OutboundPacer, Send
from app.media.resample import resampler
from app.observability.metrics import Metrics
from app.settings import Settings

log = logging.getLogger(__name__)

FailoverAction = Literal["hang_up", "transfer", "keep"]
CLAIM_TTL_S = 24 * 3600.0
PROMPT_ID = "failover-prompt"
PROMPT_SLACK_S = 2.0  # beyond the prompt's length: the lead and one slow send
ACTION_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """BACKEND_FAILOVER and its settings, with the prompt read once at startup."""

    action: FailoverAction = "hang_up"
    target: str | None = None  # the TRANSFER_TARGETS name of a transfer
    after_s: float = 10.0
    prompt: Prompt | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> FailoverPolicy:
        """The policy of `settings` (reads the prompt file: call at startup, not per call)."""
        action, _, _name = settings.backend_failover.partition(":")
        assert action in ("hang_up", "transfer", "keep")  # the settings validated it
        prompt_path = settings.backend_failover_prompt
        return cls(
            action=action,  # type: ignore[arg-type]
            target=settings.failover_transfer_target,
            after_s=settings.backend_failover_after_s,
            prompt=load_prompt(prompt_path) if prompt_path is not None else None,
        )

    def describe(self) -> str:
        return f"transfer:{self.target}" if self.action == "transfer" else self.action


class Failover:
    """Runs the policy for one call, at most once."""

    def __init__(
        self,
        policy: FailoverPolicy,
        call_connection_id: str,
        *,
        store: CallStore,
        writer: StateWriter,
        actions: Callable[[str], CallActions],
        metrics: Metrics,
    ) -> None:
        """`actions(by)`: the call's actions on behalf of `by` ("failover", "shutdown")."""
        self.policy = policy
        self._call_id = call_connection_id
        self._store = store
        self._writer = writer
        self._actions = actions
        self._metrics = metrics
        self.done = False

    async def run(self, reason: str, play: Callable[[Prompt], Awaitable[None]] | None) -> None:
        """Play the prompt through `play` (None: no outbound audio), then act (logged, counted
        and recorded on the call)."""
        policy = self.policy
        if policy.action == "keep":
            self.keep(reason)
            return
        self.done = True
        if not await self._claim():
            log.info("failover of this call already done elsewhere")
            return
        log.warning("no working backend (%s): failover %s", reason, policy.describe())
        self._record("Failover", f"{policy.describe()}: {reason}")
        if policy.prompt is not None and play is not None:
            await play(policy.prompt)
        outcome = "ok"
        try:
            async with asyncio.timeout(ACTION_TIMEOUT_S):
                await self._act("failover")
        except ActionFailed as exc:
            outcome = "error"
            log.error("failover %s failed: %s: %s", policy.describe(), exc.code, exc.message)
            self._record("FailoverFailed", f"{exc.code}: {exc.message}")
        except TimeoutError:
            outcome = "error"
            log.error("failover %s timed out after %g s", policy.describe(), ACTION_TIMEOUT_S)
            self._record("FailoverFailed", f"timed out after {ACTION_TIMEOUT_S:g} s")
        self._metrics.failover(policy.action, outcome)

    def keep(self, reason: str) -> None:
        """BACKEND_FAILOVER=keep: note that the call stays up with no working backend."""
        self.done = True
        self._record("FailoverKept", f"no working backend ({reason}); the call stays up")
        self._metrics.failover("keep", "ok")
        log.warning("no working backend (%s): BACKEND_FAILOVER=keep, the call stays", reason)

    async def at_shutdown(self, timeout_s: float) -> None:
        """This instance stops with the call on it: hang up (or transfer to the failover queue)
        rather than leave the caller in silence; BACKEND_FAILOVER=keep leaves the call up."""
        self.done = True
        if self.policy.action == "keep" or not await self._claim():
            return
        try:
            async with asyncio.timeout(timeout_s):
                await self._act("shutdown")
        except ActionFailed as exc:
            log.warning("could not end the call at shutdown: %s: %s", exc.code, exc.message)
        except TimeoutError:
            log.warning("could not end the call at shutdown: no answer in %g s", timeout_s)

    async def _act(self, by: str) -> None:
        actions = self._actions(by)
        if self.policy.action == "transfer":
            assert self.policy.target is not None
            await actions.transfer(self.policy.target)
        else:
            await actions.hang_up()

    async def _claim(self) -> bool:
        try:
            return await self._store.claim(f"failover:{self._call_id}", CLAIM_TTL_S)
        except StoreUnavailable:
            return True  # better twice than a caller left in silence

    def _record(self, event: str, detail: str) -> None:
        def mutate(current: CallRecord | None) -> CallRecord | None:
            return None if current is None else current.with_event(event, detail=detail)

        self._writer.submit(self._call_id, mutate)


async def play_prompt(
    prompt: Prompt,
    pacer: OutboundPacer,
    call_rate: int,
    send: Send,
    peer_gone: Awaitable[object],
) -> None:
    """Play `prompt` to its end through `pacer` (what it held is dropped first), bounded by its
    length; returns early when the peer goes (`peer_gone` completes)."""
    converter = resampler(prompt.sample_rate, call_rate)
    pcm = converter.process(prompt.pcm, last=True) if converter is not None else prompt.pcm
    pacer.stop_audio()
    sender = asyncio.ensure_future(pacer.run(send))
    gone = asyncio.ensure_future(peer_gone)
    try:
        await pacer.play(pcm, PROMPT_ID)
        pacer.flush()
        length_ms = len(pcm) / 2 / call_rate * 1000.0
        deadline = asyncio.get_running_loop().time() + length_ms / 1000.0 + PROMPT_SLACK_S
        while pacer.heard_ms(PROMPT_ID) < length_ms - 1.0 and not gone.done():
            if sender.done() or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.wait({gone, sender}, timeout=0.02)
    finally:
        for task in (sender, gone):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
