"""What a call target looks like, by syntax alone (pure; imports nothing of the app).

Settings check TRANSFER_TARGETS with it at startup; `app.calls.targets` turns a valid one into
the SDK's identifier. Kept apart so that settings, at the bottom of the layers, import nothing
above them.
"""

from __future__ import annotations

import re
from typing import Literal

TargetKind = Literal["phone", "acs", "teams"]

E164 = re.compile(r"^\+[1-9]\d{6,14}$")
ACS_USER = re.compile(r"^8:acs:[A-Za-z0-9_\-]+(_[A-Za-z0-9_\-]+)?$")
# Teams users' raw ids: 8:orgid: (public cloud), 8:gcch: / 8:dod: (US government clouds).
TEAMS_USER = re.compile(r"^8:(orgid|gcch|dod):([0-9a-fA-F-]{36})$")
TARGET_PROBLEM = (
    "target must be a +E.164 phone number, an ACS user (8:acs:...) or a Teams user "
    "(8:orgid:<object id>)"
)


def target_kind(target: str) -> TargetKind | None:
    """Which kind of target `target` is (surrounding spaces ignored); None: none of them."""
    value = target.strip()
    if E164.match(value):
        return "phone"
    if ACS_USER.match(value):
        return "acs"
    if TEAMS_USER.match(value):
        return "teams"
    return None
