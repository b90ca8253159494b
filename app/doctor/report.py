"""Check results, and the report doctor prints: one line per check, or one JSON document."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from enum import StrEnum


class Status(StrEnum):
    PASS = "PASS"  # noqa: S105 (a check status, not a password)
    WARN = "WARN"
    FAIL = "FAIL"
    SKIP = "SKIP"  # not applicable to these settings (no Redis configured, ...)


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check: its name, what it saw, and for a FAIL (or a WARN) what to do."""

    name: str
    status: Status
    saw: str
    fix: str | None = None


def passed(name: str, saw: str) -> CheckResult:
    return CheckResult(name, Status.PASS, saw)


def warned(name: str, saw: str, fix: str | None = None) -> CheckResult:
    return CheckResult(name, Status.WARN, saw, fix)


def failed(name: str, saw: str, fix: str) -> CheckResult:
    return CheckResult(name, Status.FAIL, saw, fix)


def skipped(name: str, saw: str) -> CheckResult:
    return CheckResult(name, Status.SKIP, saw)


@dataclass
class Report:
    """Every check's result in order, and the steps doctor cannot check from here."""

    results: list[CheckResult] = field(default_factory=list)
    instructions: list[str] = field(default_factory=list)

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    @property
    def ok(self) -> bool:
        return all(r.status is not Status.FAIL for r in self.results)

    @property
    def exit_code(self) -> int:
        """0 when nothing failed, 1 otherwise."""
        return 0 if self.ok else 1

    def find(self, name: str) -> CheckResult | None:
        return next((r for r in self.results if r.name == name), None)

    def text(self) -> str:
        """One line per check (`FAIL  name: saw`), the fix indented under it, then the steps."""
        width = max((len(r.name) for r in self.results), default=0)
        lines: list[str] = []
        for result in self.results:
            lines.append(f"{result.status.value:<4}  {result.name:<{width}}  {result.saw}")
            if result.fix and result.status in (Status.FAIL, Status.WARN):
                lines.append(f"{'':<4}  {'':<{width}}  fix: {result.fix}")
        counts = {s: sum(r.status is s for r in self.results) for s in Status}
        lines.append(
            f"\n{counts[Status.PASS]} passed, {counts[Status.WARN]} warnings, "
            f"{counts[Status.FAIL]} failed, {counts[Status.SKIP]} skipped"
        )
        if self.instructions:
            lines.append("")
            lines.extend(self.instructions)
        return "\n".join(lines)

    def json(self) -> str:
        document = {
            "ok": self.ok,
            "checks": [{**asdict(r), "status": r.status.value} for r in self.results],
            "instructions": self.instructions,
        }
        return json.dumps(document, indent=2)
