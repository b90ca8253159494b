"""CPU time and resident memory of a process, read from /proc (Linux only)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class ProcSample:
    """One reading of a process: CPU seconds used so far (all threads) and resident set."""

    cpu_s: float
    rss_bytes: int


def sample(pid: int) -> ProcSample:
    """Read `pid`'s utime+stime and VmRSS; raises ProcessLookupError when it has exited."""
    return ProcSample(cpu_seconds(pid), rss_bytes(pid))


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process, in seconds."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    utime, stime = int(fields[11]), int(fields[12])
    return (utime + stime) / _CLOCK_TICKS


def rss_bytes(pid: int) -> int:
    """VmRSS of the process, in bytes."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError as exc:
        raise ProcessLookupError(pid) from exc
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def core_busy_seconds(cpu: int) -> float:
    """Seconds core `cpu` spent busy (user, nice, system, irq, softirq), from /proc/stat.

    Compared with the pinned server's own CPU time this shows other load on its core, and
    kernel network work (softirq) not charged to any process.
    """
    prefix = f"cpu{cpu} "
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith(prefix):
            user, nice, system, _idle, _iowait, irq, softirq = map(int, line.split()[1:8])
            return (user + nice + system + irq + softirq) / _CLOCK_TICKS
    raise ValueError(f"no cpu{cpu} in /proc/stat")
