"""The log redaction filter: secrets in messages, arguments and tracebacks are masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from app.security.redaction import SecretRedactionFilter, install_log_redaction, redact
from tests.conftest import load_corpus

ACCESS_KEY = "q1w2e3r4t5y6u7i8o9p0AbCdEfGhIjKlMnOpQrStUvWxYz+/=="
JWT = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJhdWQiOiJ4In0.c2lnbmF0dXJlLWJ5dGVz"


@pytest.fixture
def captured() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install_log_redaction([handler])
    logger = logging.getLogger("tests.security.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_connection_string_access_key_is_masked() -> None:
    text = redact(f"endpoint=https://x.communication.azure.com/;accesskey={ACCESS_KEY}")
    assert ACCESS_KEY not in text
    assert text == "endpoint=https://x.communication.azure.com/;accesskey=***"


@pytest.mark.parametrize(
    "line",
    [
        f"Authorization: Bearer {JWT}",
        f"{{'Authorization': 'Bearer {JWT}', 'Host': 'x'}}",
        f'"authorization": "Bearer {JWT}"',
        f"Authorization: HMAC-SHA256 SignedHeaders=x-ms-date;host&Signature={ACCESS_KEY}",
    ],
)
def test_authorization_values_are_masked(line: str) -> None:
    text = redact(line)
    assert JWT not in text
    assert ACCESS_KEY not in text
    assert "***" in text


def test_a_loose_jwt_is_masked() -> None:
    assert redact(f"token from caller {JWT} rejected") == "token from caller *** rejected"


@pytest.mark.parametrize(
    "line",
    [
        "x-api-key: sekret-value-123",
        "api-key=sekret-value-123",
        '{"api_key": "sekret-value-123"}',
        "POST /api/incomingCall?code=sekret-value-123&x=1",
        "OPENAI_API_KEY sk-proj-sekretvalue1234567890",
    ],
)
def test_api_keys_and_secrets_are_masked(line: str) -> None:
    assert "sekret" not in redact(line)


def test_incoming_call_context_is_masked() -> None:
    data = load_corpus("incoming_call/docs_eventgrid_schema_IncomingCall_array.json")[0]["data"]
    context = data["incomingCallContext"]
    for rendering in (json.dumps(data), repr(data)):
        text = redact(rendering)
        assert context not in text
        assert context[:40] not in text
        assert data["serverCallId"] in text  # identifiers stay readable


def test_ordinary_text_is_left_alone() -> None:
    line = "callback MediaStreamingFailed code: 8603 status 500 for call 4b1f on /api/callbacks"
    assert redact(line) == line


def test_the_filter_masks_formatted_arguments(
    captured: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = captured
    logger.info("answering with %s", {"incomingCallContext": JWT, "callId": "abc"})
    output = stream.getvalue()
    assert JWT not in output
    assert "abc" in output


def test_the_filter_masks_tracebacks(captured: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = captured
    try:
        raise ValueError(f"bad connection string endpoint=x;accesskey={ACCESS_KEY}")
    except ValueError:
        logger.exception("startup failed")
    output = stream.getvalue()
    assert "ValueError" in output
    assert ACCESS_KEY not in output


def test_installing_twice_adds_one_filter() -> None:
    handler = logging.NullHandler()
    install_log_redaction([handler])
    install_log_redaction([handler])
    assert sum(isinstance(f, SecretRedactionFilter) for f in handler.filters) == 1
