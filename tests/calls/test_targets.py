"""Transfer targets and DTMF tones are checked before any request reaches ACS."""

from __future__ import annotations

import pytest
from azure.communication.callautomation import (
    CommunicationUserIdentifier,
    DtmfTone,
    MicrosoftTeamsUserIdentifier,
    PhoneNumberIdentifier,
)

from app.calls.targets import (
    InvalidTarget,
    InvalidTones,
    identifier_for_raw_id,
    parse_target,
    parse_tones,
)

TEAMS_ID = "8c0a2b3d-4e5f-4a1b-9c2d-3e4f5a6b7c8d"


def test_phone_numbers_acs_users_and_teams_users_become_sdk_identifiers() -> None:
    phone = parse_target("+14255550100")
    assert isinstance(phone, PhoneNumberIdentifier)
    assert phone.raw_id == "4:+14255550100"
    user = parse_target("8:acs:resource_user-1")
    assert isinstance(user, CommunicationUserIdentifier)
    assert user.raw_id == "8:acs:resource_user-1"
    teams = parse_target(f"8:orgid:{TEAMS_ID}")
    assert isinstance(teams, MicrosoftTeamsUserIdentifier)
    assert teams.raw_id == f"8:orgid:{TEAMS_ID}"
    assert parse_target(f"8:gcch:{TEAMS_ID}").raw_id == f"8:gcch:{TEAMS_ID}"


@pytest.mark.parametrize(
    "target",
    [
        "",
        "14255550100",
        "+0123",
        "+1425555010012345",
        "tel:+14255550100",
        "8:acs:",
        "8:orgid:x",
        "sales",
        "+1 425 555 0100",
    ],
)
def test_malformed_targets_are_refused(target: str) -> None:
    with pytest.raises(InvalidTarget) as refused:
        parse_target(target)
    assert refused.value.status == 400


def test_tones_map_to_the_sdk_names() -> None:
    assert parse_tones("0*#a9D") == [
        DtmfTone.ZERO,
        DtmfTone.ASTERISK,
        DtmfTone.POUND,
        DtmfTone.A,
        DtmfTone.NINE,
        DtmfTone.D,
    ]


@pytest.mark.parametrize("tones", ["", "12x", "1" * 19, "E"])
def test_other_tones_are_refused(tones: str) -> None:
    with pytest.raises(InvalidTones):
        parse_tones(tones)


def test_a_recorded_phone_participant_is_a_phone_number_again() -> None:
    assert identifier_for_raw_id("4:+14255550123").raw_id == "4:+14255550123"
    assert identifier_for_raw_id("8:acs:abc").raw_id == "8:acs:abc"
