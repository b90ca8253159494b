"""The failover's once-per-call rule and its actions, with a fake CallActions (no sockets)."""

from __future__ import annotations

from app.backends.base import ActionAccepted, ActionFailed
from app.calls.memory_store import MemoryCallStore
from app.calls.write_behind import StateWriter
from app.media.failover import Failover, FailoverPolicy
from app.observability.metrics import Metrics


class RecordingActions:
    """CallActions that record who asked for what."""

    def __init__(self, by: str, log: list[tuple[str, str]], fail: bool = False) -> None:
        self._by, self._log, self._fail = by, log, fail

    async def hang_up(self) -> ActionAccepted:
        self._log.append((self._by, "hang_up"))
        if self._fail:
            raise ActionFailed("call_not_found", "ACS does not know this call")
        return ActionAccepted("hang_up", "hang_up")

    async def transfer(self, target: str) -> ActionAccepted:
        self._log.append((self._by, f"transfer:{target}"))
        return ActionAccepted("transfer", "ctx")

    async def send_dtmf(self, tones: str) -> ActionAccepted:
        raise AssertionError("a failover never sends DTMF")


def _failover(
    store: MemoryCallStore, policy: FailoverPolicy, log: list[tuple[str, str]], **kw: bool
) -> Failover:
    return Failover(
        policy,
        "call-1",
        store=store,
        writer=StateWriter(store),
        actions=lambda by: RecordingActions(by, log, **kw),
        metrics=Metrics(),
    )


async def test_two_sessions_of_one_call_fail_over_once() -> None:
    store, log = MemoryCallStore(), list[tuple[str, str]]()
    policy = FailoverPolicy(action="transfer", target="queue")
    first = _failover(store, policy, log)
    second = _failover(store, policy, log)  # another socket (or instance) of the same call
    await first.run("backend failed", None)
    await second.run("backend failed", None)
    assert log == [("failover", "transfer:queue")]
    assert first.done
    assert second.done


async def test_a_shutdown_after_a_failover_does_nothing_more() -> None:
    store, log = MemoryCallStore(), list[tuple[str, str]]()
    policy = FailoverPolicy(action="hang_up")
    await _failover(store, policy, log).run("backend failed", None)
    await _failover(store, policy, log).at_shutdown(1.0)
    assert log == [("failover", "hang_up")]


async def test_a_shutdown_hangs_up_as_shutdown_unless_keep() -> None:
    log: list[tuple[str, str]] = []
    await _failover(MemoryCallStore(), FailoverPolicy(), log).at_shutdown(1.0)
    await _failover(MemoryCallStore(), FailoverPolicy(action="keep"), log).at_shutdown(1.0)
    assert log == [("shutdown", "hang_up")]


async def test_a_refused_action_is_counted_not_raised() -> None:
    metrics, log = Metrics(), list[tuple[str, str]]()
    failover = Failover(
        FailoverPolicy(),
        "call-1",
        store=MemoryCallStore(),
        writer=StateWriter(MemoryCallStore()),
        actions=lambda by: RecordingActions(by, log, fail=True),
        metrics=metrics,
    )
    await failover.run("backend failed", None)
    text = metrics.render()[0].decode()
    assert 'acs_bridge_failovers_total{action="hang_up",outcome="error"} 1.0' in text
