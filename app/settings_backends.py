"""Which settings each MEDIA_BACKEND needs to work: checked at startup (and for each agent),
so a backend that cannot work refuses to start in one line instead of failing every call."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # settings import this module to validate themselves
    from app.settings import Settings


def backend_problem(settings: Settings) -> str | None:
    """Why MEDIA_BACKEND cannot work with these settings, in one line; None when it can."""
    if settings.media_backend == "websocket" and not settings.backend_ws_url:
        return "MEDIA_BACKEND=websocket needs BACKEND_WS_URL"
    if settings.media_backend == "openai" and settings.openai_api_key is None:
        return "MEDIA_BACKEND=openai needs OPENAI_API_KEY"
    if settings.media_backend == "azure-openai" and not (
        settings.azure_openai_endpoint and settings.azure_openai_deployment
    ):
        return "MEDIA_BACKEND=azure-openai needs AZURE_OPENAI_ENDPOINT and AZURE_OPENAI_DEPLOYMENT"
    if settings.media_backend == "voice-live" and settings.azure_voicelive_endpoint is None:
        return (
            "MEDIA_BACKEND=voice-live needs AZURE_VOICELIVE_ENDPOINT "
            "(https://<resource>.services.ai.azure.com)"
        )
    if settings.media_backend == "pipecat":
        return _pipecat_problem(settings)
    return None


def _pipecat_problem(settings: Settings) -> str | None:
    if not pipecat_installed():
        return (
            "MEDIA_BACKEND=pipecat needs the pipecat extra: install it with "
            "`uv sync --extra pipecat` (or `pip install 'acs-bridge[pipecat]'`)"
        )
    if settings.pipecat_bot is not None:
        if not bot_locatable(settings.pipecat_bot):
            return (
                f"PIPECAT_BOT {settings.pipecat_bot!r}: no such module or file (expected "
                "module:function or path/to/file.py:function)"
            )
        return None  # the operator's bot builds its own services
    uses = {settings.pipecat_stt, settings.pipecat_tts}
    if "azure" in uses and not (
        settings.azure_speech_region
        and (settings.azure_speech_key or settings.azure_speech_resource_id)
    ):
        return (
            "PIPECAT_STT=azure or PIPECAT_TTS=azure needs AZURE_SPEECH_REGION and either "
            "AZURE_SPEECH_KEY or AZURE_SPEECH_RESOURCE_ID (Entra ID)"
        )
    if settings.pipecat_llm == "azure-openai" and settings.azure_openai_endpoint is None:
        return "PIPECAT_LLM=azure-openai needs AZURE_OPENAI_ENDPOINT"
    if "openai" in (*uses, settings.pipecat_llm) and settings.openai_api_key is None:
        return (
            "MEDIA_BACKEND=pipecat with an openai PIPECAT_STT, PIPECAT_LLM or PIPECAT_TTS "
            "needs OPENAI_API_KEY"
        )
    return None


def pipecat_installed() -> bool:
    """Whether the `pipecat` extra is installed (looked up, not imported: it is heavy)."""
    try:
        return importlib.util.find_spec("pipecat") is not None
    except ImportError:
        return False


def bot_locatable(target: str) -> bool:
    """Whether PIPECAT_BOT's module or file exists (found, not imported: startup stays cheap)."""
    where, _, name = target.rpartition(":")
    if not where or not name:
        return False
    if where.endswith(".py"):
        return Path(where).is_file()
    try:
        return importlib.util.find_spec(where) is not None
    except (ImportError, ValueError):
        return False
