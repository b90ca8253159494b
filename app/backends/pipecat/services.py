"""The bundled bot's services from settings: PIPECAT_STT, PIPECAT_LLM and PIPECAT_TTS.

openai        any OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY): transcriptions,
              chat completions, speech
azure-openai  the LLM on Azure OpenAI's v1 endpoint (AZURE_OPENAI_ENDPOINT), with
              AZURE_OPENAI_API_KEY or, without one, Entra ID (managed identity)
azure         Azure AI Speech STT and TTS (AZURE_SPEECH_KEY, AZURE_SPEECH_REGION)

Each service's module is imported only when chosen (the Azure Speech SDK is large).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language

from app.settings import ConfigurationError, Settings

TokenProvider = Callable[[], Awaitable[str]]
OPENAI_TTS_RATE = 24000  # OpenAI's speech API answers pcm at 24 kHz


def language(settings: Settings) -> Language:
    """PIPECAT_LANGUAGE as Pipecat's Language; raises ConfigurationError (one line)."""
    try:
        return Language(settings.pipecat_language)
    except ValueError:
        message = f"PIPECAT_LANGUAGE {settings.pipecat_language!r} is not a language Pipecat knows"
        raise ConfigurationError(message) from None


def speech_to_text(settings: Settings, sample_rate: int) -> STTService:
    if settings.pipecat_stt == "azure":
        from pipecat.services.azure.stt import AzureSTTService

        key, region = _azure_speech(settings)
        return AzureSTTService(
            api_key=key,
            region=region,
            sample_rate=sample_rate,
            settings=AzureSTTService.Settings(language=language(settings)),
        )
    from pipecat.services.openai.stt import OpenAISTTService

    return OpenAISTTService(
        api_key=_openai_key(settings),
        base_url=settings.openai_base_url,
        settings=OpenAISTTService.Settings(
            model=settings.pipecat_stt_model, language=language(settings)
        ),
    )


def language_model(
    settings: Settings, instructions: str, token_provider: TokenProvider | None = None
) -> LLMService[Any]:
    if settings.pipecat_llm == "azure-openai":
        from pipecat.services.azure.llm import AzureLLMService

        endpoint = str(settings.azure_openai_endpoint or "").rstrip("/")
        key = settings.azure_openai_api_key
        return AzureLLMService(
            endpoint=f"{endpoint}/openai/v1",
            api_key=key.get_secret_value() if key is not None else None,
            token_provider=None if key is not None else token_provider,
            settings=AzureLLMService.Settings(
                model=settings.pipecat_llm_model, system_instruction=instructions
            ),
        )
    from pipecat.services.openai.llm import OpenAILLMService

    return OpenAILLMService(
        api_key=_openai_key(settings),
        base_url=settings.openai_base_url,
        settings=OpenAILLMService.Settings(
            model=settings.pipecat_llm_model, system_instruction=instructions
        ),
    )


def text_to_speech(settings: Settings) -> TTSService:
    if settings.pipecat_tts == "azure":
        from pipecat.services.azure.tts import AzureTTSService

        key, region = _azure_speech(settings)
        return AzureTTSService(
            api_key=key,
            region=region,
            settings=AzureTTSService.Settings(
                voice=settings.azure_speech_voice, language=language(settings)
            ),
        )
    from pipecat.services.openai.tts import OpenAITTSService

    return OpenAITTSService(
        api_key=_openai_key(settings),
        base_url=settings.openai_base_url,
        sample_rate=OPENAI_TTS_RATE,
        settings=OpenAITTSService.Settings(
            model=settings.pipecat_tts_model, voice=settings.pipecat_tts_voice
        ),
    )


def _openai_key(settings: Settings) -> str:
    key = settings.openai_api_key
    if key is None:
        raise ConfigurationError(
            "an openai PIPECAT_STT, PIPECAT_LLM or PIPECAT_TTS needs OPENAI_API_KEY"
        )
    return key.get_secret_value()


def _azure_speech(settings: Settings) -> tuple[str, str]:
    key, region = settings.azure_speech_key, settings.azure_speech_region
    if key is None or not region:
        raise ConfigurationError(
            "PIPECAT_STT/TTS=azure needs AZURE_SPEECH_KEY and AZURE_SPEECH_REGION"
        )
    return key.get_secret_value(), region
