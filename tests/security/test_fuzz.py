"""Hostile input, generated: the media parser, the event parsers, and the control API schema."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.calls.deliveries import (
    EventParseError,
    load_json_array,
    parse_callback_events,
    parse_grid_events,
    parse_incoming_call,
)
from app.calls.record_changes import apply_callback
from app.media.protocol import MalformedMessage, parse_message
from tests.conftest import CONTROL_API_KEY, AppFactory, load_corpus

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=20,
)
KINDS = st.sampled_from(
    [
        "AudioData",
        "AudioMetadata",
        "DtmfData",
        "TranscriptionData",
        "TranscriptionMetadata",
        "Other",
    ]
)


def _media_message(kind: str, body: object) -> str:
    key = kind[0].lower() + kind[1:]
    return json.dumps({"kind": kind, key: body})


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_media_parser_never_crashes_on_garbage(raw: str | bytes) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_message(raw)


@settings(max_examples=300, deadline=None)
@given(KINDS, JSON)
def test_media_parser_never_crashes_on_wrong_shapes(kind: str, body: object) -> None:
    with contextlib.suppress(MalformedMessage):
        parse_message(_media_message(kind, body))


@settings(max_examples=300, deadline=None)
@given(st.lists(JSON, max_size=4))
def test_event_parsers_raise_only_parse_errors(items: list[object]) -> None:
    body = json.dumps(items).encode()
    try:
        decoded = load_json_array(body)
        for grid_event in parse_grid_events(decoded):
            if grid_event.type == "Microsoft.Communication.IncomingCall":
                parse_incoming_call(grid_event)
    except EventParseError:
        pass
    try:
        for event in parse_callback_events(load_json_array(body)):
            apply_callback(event)(None)
    except EventParseError:
        pass


CALLBACK = load_corpus("callback_events/pysdk_e2e_media_MediaStreamingStarted.json")


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["mediaStreamingUpdate", "resultInformation", "type", "correlationId"]),
        JSON,
    )
)
def test_callback_state_machine_accepts_mangled_data(overrides: dict[str, object]) -> None:
    event = json.loads(json.dumps(CALLBACK))
    event["data"].update(overrides)
    for parsed in parse_callback_events([event]):
        record = apply_callback(parsed)(None)
        assert record is not None


@pytest.fixture
async def api_client(
    start_app: AppFactory,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, object]]]:
    async with start_app() as live:
        schema = (await live.client.get("/openapi.json")).json()
        yield live.client, schema


async def test_control_api_never_answers_500_to_generated_requests(
    api_client: tuple[httpx.AsyncClient, dict[str, object]],
) -> None:
    client, raw_schema = api_client
    schema = schemathesis.openapi.from_dict(raw_schema)
    failures: list[str] = []
    for operation in schema.get_all_operations():
        strategy = operation.ok().as_strategy()  # type: ignore[union-attr]
        for case in _examples(strategy, 25):
            body = None if _unset(case.body) else case.body
            response = await client.request(
                case.method,
                case.formatted_path,
                params=case.query or None,
                json=body,
                headers={"X-API-Key": CONTROL_API_KEY},
            )
            # 502/503 are honest answers about ACS; any other 5xx is a bug.
            if response.status_code >= 500 and response.status_code not in (502, 503):
                failures.append(f"{case.method} {case.formatted_path}: {response.status_code}")
            if response.content:
                response.json()  # every answer, errors included, is JSON
    assert failures == []


def _examples(
    strategy: st.SearchStrategy[schemathesis.Case[Any]], count: int
) -> list[schemathesis.Case[Any]]:
    """Draw `count` cases from a schemathesis strategy (requests are sent outside hypothesis)."""
    cases: list[schemathesis.Case[Any]] = []

    @settings(
        max_examples=count, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(strategy)
    def draw(case: schemathesis.Case[Any]) -> None:
        cases.append(case)

    draw()
    return cases


def _unset(value: object) -> bool:
    return type(value).__name__ == "NotSet"
