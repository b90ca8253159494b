"""What ACS's result codes mean and what to do about them, from Microsoft's published table.

Callbacks (`MediaStreamingFailed`, `CallDisconnected`, `CallTransferFailed`, `PlayFailed`,
`AnswerFailed`, ...) carry `resultInformation {code, subCode, message}`; the subcode says why.
`acs_codes.json` beside this module holds the table (its source URL inside, and in
docs/acs-result-codes.md). Lookups are by (code, subcode) first, since ACS reuses a subcode
under two codes (8522), then by subcode alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

TABLE_PATH = Path(__file__).with_name("acs_codes.json")


@dataclass(frozen=True, slots=True)
class CodeExplanation:
    """One row of the table: the subcode's name, what it means, what to do."""

    sub_code: int
    name: str
    meaning: str
    action: str

    def text(self) -> str:
        """`<sub> <name>: <meaning> Fix: <action>` in one line (no action: no `Fix:`)."""
        line = f"{self.sub_code} {self.name}: {self.meaning}"
        return f"{line} Fix: {self.action}" if self.action else line


def explain(code: int | None, sub_code: int | None) -> CodeExplanation | None:
    """The explanation of an ACS result, or None for a subcode the table does not know."""
    if sub_code is None:
        return None
    table = _table()
    return table.get((code, sub_code)) or table.get((None, sub_code))


def explain_failure(code: object, sub_code: object) -> str | None:
    """`explain(...).text()` for a result worth explaining; accepts the raw JSON values.

    A success needs no words: a 2xx code (or none) with a subcode whose row asks for no
    action (0, 7000 the normal end of a call, 7015 a completed transfer)."""
    code_ = code if isinstance(code, int) and not isinstance(code, bool) else None
    sub = sub_code if isinstance(sub_code, int) and not isinstance(sub_code, bool) else None
    found = explain(code_, sub)
    if found is None:
        return None
    if not found.action and (code_ is None or 200 <= code_ < 300):
        return None
    return found.text()


@cache
def _table() -> dict[tuple[int | None, int], CodeExplanation]:
    rows = json.loads(TABLE_PATH.read_text(encoding="utf-8"))["codes"]
    table: dict[tuple[int | None, int], CodeExplanation] = {}
    for row in rows:
        entry = CodeExplanation(
            sub_code=int(row["sub_code"]),
            name=str(row["name"]),
            meaning=str(row["meaning"]),
            action=str(row["action"]),
        )
        code = row.get("code")
        table[(int(code) if code is not None else None, entry.sub_code)] = entry
        # The first row of a subcode also answers lookups without a matching code.
        table.setdefault((None, entry.sub_code), entry)
    return table
