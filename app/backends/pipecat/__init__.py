"""MEDIA_BACKEND=pipecat: a Pipecat bot per call, on the call's `AcsTransport`.

transport.py  AcsTransport: the call as a Pipecat transport (input, output, events)
audio.py      the bot's audio paced into the call, one playback per turn
observer.py   transcript lines and turn latency from the bot's pipeline
tools.py      register_call_tools: the bridge's tools on any Pipecat LLM service
backend.py    the Backend: the bot's run, its end, the call's end
cascade.py    the bot shipped with the project (PIPECAT_BOT unset): VAD, STT, LLM, TTS

Imported only when MEDIA_BACKEND=pipecat (the `pipecat` extra).
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path

from app.agent.tools import ToolConfig
from app.backends.pipecat.backend import Bot, PipecatBackend
from app.backends.pipecat.logs import route_pipecat_logs
from app.backends.pipecat.services import EntraTokens, uses_speech_entra_id
from app.backends.pipecat.tools import register_call_tools
from app.backends.pipecat.transport import AcsTransport
from app.settings import ConfigurationError, Settings

__all__ = [
    "AcsTransport",
    "Bot",
    "PipecatBackend",
    "create_pipecat_backend",
    "load_bot",
    "open_pipecat_factory",
    "register_call_tools",
]


def create_pipecat_backend(settings: Settings) -> PipecatBackend:
    """A backend with the built-in tools (AGENT_TOOLS_FILE's come with the app's factory)."""
    tools = ToolConfig.built_in(settings)
    if settings.pipecat_bot is not None:
        return PipecatBackend(load_bot(settings.pipecat_bot), tools=tools)
    from app.backends.pipecat import cascade

    bot = cascade.bind_settings(cascade.run_bot, settings)
    return PipecatBackend(bot, tools=tools, sample_rate=cascade.SAMPLE_RATE)


async def open_pipecat_factory(
    settings: Settings, stack: AsyncExitStack, *, tools: ToolConfig | None = None
) -> Callable[[Settings], PipecatBackend]:
    """The per-call factory: the bot loaded once (a bad PIPECAT_BOT stops the app), the app's
    agent tools and their HTTP client."""
    from app.backends.realtime import open_tools

    route_pipecat_logs(settings.log_level)
    sample_rate: int | None = None
    if settings.pipecat_bot is not None:
        bot = load_bot(settings.pipecat_bot)
    else:
        from app.backends.pipecat import cascade
        from app.backends.pipecat.services import language

        language(settings)  # an unknown PIPECAT_LANGUAGE stops the app, not each call
        bot = cascade.bind_settings(
            cascade.run_bot, settings, await _token_provider(settings, stack)
        )
        sample_rate = cascade.SAMPLE_RATE
    tools, client = await open_tools(settings, stack, tools)

    def factory(_: Settings) -> PipecatBackend:
        return PipecatBackend(bot, tools=tools, http_client=client, sample_rate=sample_rate)

    return factory


async def _token_provider(settings: Settings, stack: AsyncExitStack) -> EntraTokens | None:
    """Entra ID for PIPECAT_LLM=azure-openai and Azure AI Speech without their keys: one
    credential (and one cached token, same scope) for every call."""
    llm_entra = settings.pipecat_llm == "azure-openai" and settings.azure_openai_api_key is None
    if not (llm_entra or uses_speech_entra_id(settings)):
        return None
    from app.backends.realtime.connection import EntraTokenProvider, default_azure_credential

    credential = default_azure_credential()
    stack.push_async_callback(credential.close)
    return EntraTokenProvider(credential)


def load_bot(target: str) -> Bot:
    """`module:function` or `path/to/file.py:function`; raises ConfigurationError (one line)."""
    where, _, name = target.rpartition(":")
    if not where or not name:
        raise ConfigurationError(
            f"PIPECAT_BOT {target!r}: expected module:function or file.py:function"
        )
    try:
        module = _import(where)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"PIPECAT_BOT {target!r}: cannot import {where}: {exc!r}"
        ) from None
    bot = getattr(module, name, None)
    if bot is None or not inspect.iscoroutinefunction(bot):
        raise ConfigurationError(
            f"PIPECAT_BOT {target!r}: {name} is not an async function run_bot(transport, call)"
        )
    checked: Bot = bot
    return checked


def _import(where: str) -> object:
    if not where.endswith(".py"):
        return importlib.import_module(where)
    path = Path(where).resolve()
    if not path.is_file():
        raise ConfigurationError(f"PIPECAT_BOT: no such file {where}")
    module_name = f"pipecat_bot_{abs(hash(str(path)))}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"PIPECAT_BOT: cannot load {where}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    spec.loader.exec_module(module)
    return module
