"""The call bus, in memory and across two instances on Redis: same behaviour behind one Protocol."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from app.calls.call_bus import (
    BusCommand,
    CallBus,
    CommandFailed,
    CommandTimeout,
    MemoryCallBus,
    NoMediaOwner,
)
from tests.calls.redis.conftest import BusFactory


@dataclass
class Buses:
    """The bus of the instance holding the socket, and the bus a REST request arrives on."""

    owner: CallBus
    requester: CallBus
    owner_id: str


@pytest.fixture(params=["memory", "redis"])
async def buses(request: pytest.FixtureRequest, open_bus: BusFactory) -> AsyncIterator[Buses]:
    if request.param == "memory":
        bus = MemoryCallBus("a")
        yield Buses(bus, bus, "a")
        await bus.close()
    else:
        yield Buses(await open_bus("a"), await open_bus("b"), "a")


async def echo(command: BusCommand) -> Mapping[str, Any]:
    return {"call": command.call_connection_id, "name": command.name, **command.args}


async def hang(command: BusCommand) -> Mapping[str, Any]:
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


async def refuse(command: BusCommand) -> Mapping[str, Any]:
    raise CommandFailed("nothing_playing", "no audio is playing")


async def crash(command: BusCommand) -> Mapping[str, Any]:
    raise RuntimeError("bug")


async def test_request_reaches_the_owner_and_returns_its_result(buses: Buses) -> None:
    async with buses.owner.serve("c1", echo):
        reply = await buses.requester.request("c1", "say", {"text": "hi"})
    assert reply.instance_id == buses.owner_id
    assert reply.result == {"call": "c1", "name": "say", "text": "hi"}


async def test_request_without_an_owner_raises_no_media_owner(buses: Buses) -> None:
    with pytest.raises(NoMediaOwner):
        await buses.requester.request("c1", "stop_audio", timeout_s=5)


async def test_request_after_the_owner_left_raises_no_media_owner(buses: Buses) -> None:
    async with buses.owner.serve("c1", echo):
        pass
    with pytest.raises(NoMediaOwner):
        await buses.requester.request("c1", "stop_audio")


async def test_owner_that_does_not_answer_times_out(buses: Buses) -> None:
    async with buses.owner.serve("c1", hang):
        with pytest.raises(CommandTimeout):
            await buses.requester.request("c1", "stop_audio", timeout_s=0.2)


async def test_owner_refusal_arrives_with_its_code(buses: Buses) -> None:
    async with buses.owner.serve("c1", refuse):
        with pytest.raises(CommandFailed) as failed:
            await buses.requester.request("c1", "stop_audio")
    assert failed.value.code == "nothing_playing"
    assert failed.value.message == "no audio is playing"


async def test_owner_crash_arrives_as_an_internal_failure(buses: Buses) -> None:
    async with buses.owner.serve("c1", crash):
        with pytest.raises(CommandFailed) as failed:
            await buses.requester.request("c1", "stop_audio")
    assert failed.value.code == "internal"


async def test_newest_socket_answers_and_the_older_one_again_after_it_leaves(
    buses: Buses,
) -> None:
    async def old(command: BusCommand) -> Mapping[str, Any]:
        return {"socket": "old"}

    async def new(command: BusCommand) -> Mapping[str, Any]:
        return {"socket": "new"}

    async with buses.owner.serve("c1", old):
        async with buses.owner.serve("c1", new):
            assert (await buses.requester.request("c1", "x")).result == {"socket": "new"}
        assert (await buses.requester.request("c1", "x")).result == {"socket": "old"}


async def test_held_names_the_calls_some_instance_serves(buses: Buses) -> None:
    async with buses.owner.serve("c1", echo):
        assert await buses.requester.held(["c1", "c2"]) == {"c1"}
    assert await buses.requester.held(["c1", "c2"]) == set()


async def test_leaving_serve_cancels_a_command_in_progress(open_bus: BusFactory) -> None:
    owner, requester = await open_bus("a"), await open_bus("b")
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def slow(command: BusCommand) -> Mapping[str, Any]:
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return {}

    async with owner.serve("c1", slow):
        request = asyncio.create_task(requester.request("c1", "x", timeout_s=30))
        await asyncio.wait_for(started.wait(), 10)
    assert cancelled.is_set()
    request.cancel()
    await asyncio.gather(request, return_exceptions=True)
