"""The bridge's call tools on any Pipecat LLM service: `register_call_tools(llm, transport)`.

The tools are the Realtime backends' (`app.agent`): end_call, transfer_call to the names of
TRANSFER_TARGETS only, send_dtmf with AGENT_DTMF_TOOL=true, and AGENT_TOOLS_FILE's HTTP
tools, checked and run by the call's `ToolRunner` and recorded on the call the same way.
`end_call` ends the bot's pipeline from its start (an `EndWorkerFrame` upstream), so the
goodbye already on its way is spoken and heard before the bridge hangs up.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import EndWorkerFrame, FunctionCallResultProperties
from pipecat.processors.frame_processor import FrameDirection
from pipecat.services.llm_service import FunctionCallParams, LLMService

from app.agent.runner import ToolResult, ToolRunner
from app.agent.tools import ToolSpec
from app.backends.base import MediaOutput

log = logging.getLogger(__name__)


class CallTools:
    """One call's tool runs: owned tasks, so a barge-in cannot cut an action in half."""

    def __init__(self, runner: ToolRunner | None, output: MediaOutput) -> None:
        self.runner = runner
        self._output = output
        self._tasks: set[asyncio.Task[ToolResult]] = set()

    @property
    def specs(self) -> tuple[ToolSpec, ...]:
        return () if self.runner is None else self.runner.tools.tools

    async def run(self, name: str, arguments: str) -> ToolResult:
        runner = self.runner
        if runner is None:
            raise LookupError("no tools are configured for this call")
        task = asyncio.create_task(self._run(runner, name, arguments), name=f"pipecat-tool-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        # Shielded: an interruption cancels the LLM's wait, not the transfer under way.
        return await asyncio.shield(task)

    async def close(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.runner is not None:
            await self.runner.close()

    async def _run(self, runner: ToolRunner, name: str, arguments: str) -> ToolResult:
        try:
            result = await runner.run(name, arguments)
        except Exception:
            # The edge of the tool's task: a bug in a tool costs the model one answer, not the call.
            log.exception("tool %s crashed", name[:64])
            result = runner.failed(name, arguments, "the tool failed unexpectedly")
        self._output.report(result.event())
        return result


def register_call_tools(llm: LLMService[Any], transport: Any) -> list[FunctionSchema]:
    """Register the call's tools on `llm`; their schemas, for the bot's `ToolsSchema`.

    `transport` is the call's `AcsTransport` (typed loosely: pipecat's service generics vary).
    """
    tools: CallTools | None = getattr(transport, "call_tools", None)
    if tools is None:
        raise ValueError("register_call_tools needs the AcsTransport the bridge gave the bot")
    schemas: list[FunctionSchema] = []
    for spec in tools.specs:
        llm.register_function(spec.name, _handler(tools, spec.name))
        parameters = spec.parameters
        schemas.append(
            FunctionSchema(
                name=spec.name,
                description=spec.description,
                properties=dict(parameters.get("properties", {})),
                required=list(parameters.get("required", [])),
            )
        )
    return schemas


def _handler(tools: CallTools, name: str) -> Any:
    async def handle(params: FunctionCallParams) -> None:
        result = await tools.run(name, json.dumps(dict(params.arguments)))
        try:
            output: Any = json.loads(result.output)
        except json.JSONDecodeError:
            output = result.output  # an HTTP tool's plain-text answer
        if result.ends_call:
            # The goodbye is already queued: end the pipeline behind it, the model says no more.
            await params.result_callback(
                output, properties=FunctionCallResultProperties(run_llm=False)
            )
            await params.llm.push_frame(EndWorkerFrame(), FrameDirection.UPSTREAM)
            return
        await params.result_callback(output)

    return handle
