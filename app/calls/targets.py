"""Who a call action is aimed at: transfer targets and DTMF tones, checked before any request.

InvalidTarget   400  not a +E.164 number, an ACS user (8:acs:...) or a Teams user (8:orgid:...)
InvalidTones    400  DTMF tones other than 0-9 * # A-D, or none, or too many
"""

from __future__ import annotations

from azure.communication.callautomation import (
    CommunicationIdentifier,
    CommunicationUserIdentifier,
    DtmfTone,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
)

from app.addresses import TARGET_PROBLEM, TEAMS_USER, target_kind
from app.calls.control import CallControlError

_TEAMS_CLOUDS = {"orgid": "PUBLIC", "gcch": "GCCH", "dod": "DOD"}
_TONES = {
    **{
        str(d): DtmfTone(name)
        for d, name in enumerate(
            ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
        )
    },
    "*": DtmfTone.ASTERISK,
    "#": DtmfTone.POUND,
    "A": DtmfTone.A,
    "B": DtmfTone.B,
    "C": DtmfTone.C,
    "D": DtmfTone.D,
}
MAX_TONES = 18  # ACS sends at most 18 tones per request


class InvalidTarget(CallControlError):
    status = 400
    code = "invalid_target"


class InvalidTones(CallControlError):
    status = 400
    code = "invalid_tones"


def parse_target(target: str) -> CommunicationIdentifier:
    """The SDK identifier for `target`; raises InvalidTarget."""
    value = target.strip()
    kind = target_kind(value)
    if kind == "phone":
        return PhoneNumberIdentifier(value)
    if kind == "acs":
        return CommunicationUserIdentifier(value)
    teams = TEAMS_USER.match(value)
    if kind == "teams" and teams:
        return MicrosoftTeamsUserIdentifier(teams.group(2), cloud=_TEAMS_CLOUDS[teams.group(1)])
    raise InvalidTarget(TARGET_PROBLEM)


def parse_tones(tones: str) -> list[DtmfTone]:
    """The SDK's tones for `tones` ("123#"); raises InvalidTones."""
    cleaned = tones.strip().upper()
    if not cleaned or len(cleaned) > MAX_TONES:
        raise InvalidTones(f"send 1 to {MAX_TONES} DTMF tones")
    unknown = sorted({t for t in cleaned if t not in _TONES})
    if unknown:
        raise InvalidTones(f"not DTMF tones: {''.join(unknown)!r} (use 0-9 * # A-D)")
    return [_TONES[t] for t in cleaned]


def identifier_for_raw_id(raw_id: str) -> CommunicationIdentifier:
    """An identifier for a participant's raw id as call records keep it (4:+1..., 8:acs:...)."""
    if raw_id.startswith("4:"):
        return PhoneNumberIdentifier(raw_id[2:])
    return parse_target(raw_id)
