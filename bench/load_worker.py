"""One load-generator process: plays its share of the calls on a uvloop event loop.

The coordinator (`bench.loadgen`) starts one worker per process. A worker connects its calls,
sends each call's AudioMetadata, reports ready, waits for the common start time `t0` (an
absolute `time.monotonic()`, shared by every process on the machine), then sends AudioData
on an absolute schedule and matches the echoes until the drain deadline.

Call `i` of `n` sends at `t0 + (i * 20 // n) ms + k * 20 ms`: calls are spread over the 20 ms
slot in 1 ms steps, and one sender task per process wakes once per step for every call due
then, instead of one timer per call and frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import time
import uuid
from collections import defaultdict
from multiprocessing.connection import Connection

import uvloop
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, WebSocketException

from bench.acs_frames import FRAME_MS
from bench.call_stream import CallStream, WorkerResult
from bench.load_config import LoadConfig

FRAME_S = FRAME_MS / 1000
_TIMER_RESOLUTION_S = 0.001


def worker_main(config: LoadConfig, call_indices: list[int], conn: Connection) -> None:
    """Process entry point: run the calls in `call_indices`, report through `conn`."""
    try:
        result = uvloop.run(_run_worker(config, call_indices, conn))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        raise
    conn.send(("result", result))
    conn.close()


def slot_ms(call_index: int, calls: int) -> int:
    """The call's offset within the 20 ms frame period, in whole milliseconds."""
    return call_index * FRAME_MS // calls


async def _run_worker(
    config: LoadConfig, call_indices: list[int], conn: Connection
) -> WorkerResult:
    result = WorkerResult()
    run_id = uuid.uuid4().hex[:8]
    gate = asyncio.Semaphore(config.connect_concurrency)
    connected = await asyncio.gather(
        *(_connect_call(config, i, run_id, gate, result) for i in call_indices)
    )
    calls = [call for call in connected if call is not None]
    result.calls_connected = len(calls)
    conn.send(("ready", len(calls), result.connect_errors[:5]))
    message = await asyncio.get_running_loop().run_in_executor(None, conn.recv)
    t0, wall0 = float(message[1]), float(message[2])
    window_start = t0 + config.warmup_s
    for call in calls:
        call.window = (window_start, window_start + config.seconds)

    # Nothing allocated per frame forms cycles; a collection pause would only show up as slip.
    gc.collect()
    gc.disable()
    try:
        async with asyncio.TaskGroup() as group:
            readers = [group.create_task(call.receive()) for call in calls]
            await _send_all(calls, config, t0, wall0)
            last_due = t0 + (calls[-1].total if calls else 0) * FRAME_S
            await asyncio.sleep(max(0.0, last_due + config.drain_s - time.monotonic()))
            for reader in readers:
                reader.cancel()
    finally:
        gc.enable()
        await asyncio.gather(*(call.close() for call in calls))
    for call in calls:
        call.merge_into(result)
    return result


async def _send_all(calls: list[CallStream], config: LoadConfig, t0: float, wall0: float) -> None:
    """Send every call's frames on the absolute schedule, one wake-up per 1 ms slot."""
    by_slot: defaultdict[int, list[CallStream]] = defaultdict(list)
    for call in calls:
        by_slot[slot_ms(call.index, config.calls)].append(call)
    slots = sorted((ms / 1000, group) for ms, group in by_slot.items())
    total = calls[0].total if calls else 0
    monotonic, sleep = time.monotonic, asyncio.sleep
    for seq in range(total):
        frame_start = t0 + seq * FRAME_S
        for offset, group in slots:
            due = frame_start + offset
            delay = due - monotonic()
            # uvloop's timers tick in whole milliseconds: a sub-millisecond sleep returns at
            # once, so waiting for the exact instant would spin. Sends leave within ~1 ms of
            # their due time (the slip report shows how close).
            if delay > _TIMER_RESOLUTION_S / 2:
                await sleep(delay)
            wall = wall0 + (due - t0)
            for call in group:
                call.send_frame(seq, due, wall)


async def _connect_call(
    config: LoadConfig, index: int, run_id: str, gate: asyncio.Semaphore, result: WorkerResult
) -> CallStream | None:
    headers = {
        "x-ms-call-connection-id": f"bench-{run_id}-{index:05d}",
        "x-ms-call-correlation-id": str(uuid.uuid4()),
    }
    async with gate:
        try:
            ws = await connect(
                config.url,
                additional_headers=headers,
                compression="deflate" if config.deflate else None,
                ping_interval=None,
                open_timeout=config.connect_timeout_s,
                max_size=1 << 20,
                close_timeout=2.0,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            result.connect_errors.append(f"call {index}: {type(exc).__name__}: {exc}")
            return None
    call = CallStream(index, ws, config)
    try:
        await ws.send(call.frames.audio_metadata(f"bench-{run_id}-{index}"), text=True)
    except ConnectionClosed as exc:
        result.connect_errors.append(f"call {index}: closed after connect: {exc}")
        with contextlib.suppress(ConnectionClosed, OSError):
            await ws.close()
        return None
    return call
