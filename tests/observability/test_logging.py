from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from app.observability.logging import bind_call, configure_logging, current_call
from app.settings import Settings

log = logging.getLogger("app.test.observability")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """configure_logging changes process-wide state: put it back after each test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn_state = (list(uvicorn.handlers), uvicorn.propagate, uvicorn.level)
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    uvicorn.handlers[:] = uvicorn_state[0]
    uvicorn.propagate, uvicorn.level = uvicorn_state[1], uvicorn_state[2]


def configured(log_format: str) -> io.StringIO:
    stream = io.StringIO()
    settings = Settings(_env_file=None, log_format=log_format, instance_id="bridge-1")
    configure_logging(settings, stream)
    return stream


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_call_ids_inside_bind_call() -> None:
    stream = configured("json")
    with bind_call("call-1", "corr-1"):
        log.info("media started")
    (line,) = json_lines(stream)
    assert line["message"] == "media started"
    assert line["level"] == "INFO"
    assert line["logger"] == "app.test.observability"
    assert line["call_connection_id"] == "call-1"
    assert line["correlation_id"] == "corr-1"
    assert line["instance_id"] == "bridge-1"
    assert line["timestamp"].endswith("Z")


async def test_tasks_started_inside_bind_call_carry_its_ids() -> None:
    stream = configured("json")

    async def relay() -> None:
        await asyncio.sleep(0)
        log.warning("backend slow")

    with bind_call("call-2", "corr-2"):
        task = asyncio.create_task(relay())
    await task
    (line,) = json_lines(stream)
    assert (line["call_connection_id"], line["correlation_id"]) == ("call-2", "corr-2")


def test_lines_outside_a_call_have_no_call_ids() -> None:
    stream = configured("json")
    with bind_call("call-3"):
        pass
    log.info("startup")
    (line,) = json_lines(stream)
    assert "call_connection_id" not in line
    assert current_call() is None


def test_extra_fields_are_kept_and_extra_ids_win() -> None:
    stream = configured("json")
    with bind_call("bound", "bound-corr"):
        log.info("frames", extra={"frames_in": 50, "call_connection_id": "explicit"})
    (line,) = json_lines(stream)
    assert line["frames_in"] == 50
    assert line["call_connection_id"] == "explicit"
    assert line["correlation_id"] == "bound-corr"


def test_json_lines_carry_the_traceback() -> None:
    stream = configured("json")
    try:
        raise ValueError("bad frame")
    except ValueError:
        log.exception("relay failed")
    (line,) = json_lines(stream)
    assert "ValueError: bad frame" in line["exc_info"]


def test_text_lines_are_readable() -> None:
    stream = configured("text")
    with bind_call("call-4", "corr-4"):
        log.warning("backend reconnected", extra={"attempt": 2})
    log.info("idle")
    first, second = stream.getvalue().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}"
    assert re.fullmatch(
        stamp + r" WARNING app\.test\.observability \[call=call-4 corr=corr-4\] "
        r"backend reconnected attempt=2",
        first,
    )
    assert re.fullmatch(stamp + r" INFO    app\.test\.observability idle", second)


def test_configuring_twice_keeps_one_handler() -> None:
    configured("text")
    stream = configured("json")
    log.info("once")
    bridge_handlers = [
        h for h in logging.getLogger().handlers if type(h).__name__ == "_BridgeHandler"
    ]
    assert len(bridge_handlers) == 1
    assert len(json_lines(stream)) == 1


def test_uvicorn_lines_go_through_the_same_formatter() -> None:
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(logging.StreamHandler(io.StringIO()))  # as uvicorn's dictConfig leaves it
    uvicorn.propagate = False
    stream = configured("json")
    uvicorn.info("Application startup complete.", extra={"color_message": "\x1b[32mok\x1b[0m"})
    (line,) = json_lines(stream)
    assert line["logger"] == "uvicorn.error"
    assert "color_message" not in line
    assert uvicorn.handlers == []


def test_secrets_are_masked_in_log_lines() -> None:
    stream = configured("json")
    log.warning("connecting with accesskey=c2VjcmV0")
    (line,) = json_lines(stream)
    assert "c2VjcmV0" not in line["message"]
