"""The bundled bot's services from settings: PIPECAT_STT, PIPECAT_LLM and PIPECAT_TTS.

openai        any OpenAI-compatible endpoint (OPENAI_BASE_URL, OPENAI_API_KEY): transcriptions,
              chat completions, speech
azure-openai  the LLM on Azure OpenAI's v1 endpoint (AZURE_OPENAI_ENDPOINT), with
              AZURE_OPENAI_API_KEY or, without one, Entra ID (managed identity)
azure         Azure AI Speech STT and TTS in AZURE_SPEECH_REGION, with AZURE_SPEECH_KEY or, without
              one, Entra ID (managed identity) for AZURE_SPEECH_RESOURCE_ID (speech.py)

Each service's module is imported only when chosen (the Azure Speech SDK is large).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol

from pipecat.services.llm_service import LLMService
from pipecat.services.stt_service import STTService
from pipecat.services.tts_service import TTSService
from pipecat.transcriptions.language import Language

from app.settings import ConfigurationError, Settings

if TYPE_CHECKING:
    from azure.core.credentials import AccessToken

    from app.backends.pipecat.speech import SpeechAuthorization

TokenProvider = Callable[[], Awaitable[str]]
OPENAI_TTS_RATE = 24000  # OpenAI's speech API answers pcm at 24 kHz


class EntraTokens(Protocol):
    """The app's Entra token for the Cognitive Services scope (`EntraTokenProvider`): the
    bearer token for azure-openai, the AccessToken (with its expiry) for Azure AI Speech."""

    async def __call__(self) -> str: ...

    async def token(self) -> AccessToken: ...


def language(settings: Settings) -> Language:
    """PIPECAT_LANGUAGE as Pipecat's Language; raises ConfigurationError (one line)."""
    try:
        return Language(settings.pipecat_language)
    except ValueError:
        message = f"PIPECAT_LANGUAGE {settings.pipecat_language!r} is not a language Pipecat knows"
        raise ConfigurationError(message) from None


def speech_to_text(
    settings: Settings, sample_rate: int, tokens: EntraTokens | None = None
) -> STTService:
    if settings.pipecat_stt == "azure":
        from pipecat.services.azure.stt import AzureSTTService

        key, region = _azure_speech(settings)
        stt_settings = AzureSTTService.Settings(language=language(settings))
        if key is None:
            from app.backends.pipecat.speech import EntraAzureSTTService

            return EntraAzureSTTService(
                authorization=_speech_authorization(settings, tokens),
                region=region,
                sample_rate=sample_rate,
                settings=stt_settings,
            )
        return AzureSTTService(
            api_key=key, region=region, sample_rate=sample_rate, settings=stt_settings
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


def text_to_speech(settings: Settings, tokens: EntraTokens | None = None) -> TTSService:
    if settings.pipecat_tts == "azure":
        from pipecat.services.azure.tts import AzureTTSService

        key, region = _azure_speech(settings)
        tts_settings = AzureTTSService.Settings(
            voice=settings.azure_speech_voice, language=language(settings)
        )
        if key is None:
            from app.backends.pipecat.speech import EntraAzureTTSService

            return EntraAzureTTSService(
                authorization=_speech_authorization(settings, tokens),
                region=region,
                settings=tts_settings,
            )
        return AzureTTSService(api_key=key, region=region, settings=tts_settings)
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


def uses_speech_entra_id(settings: Settings) -> bool:
    """Whether Azure AI Speech authenticates with Entra ID (no AZURE_SPEECH_KEY)."""
    uses = {settings.pipecat_stt, settings.pipecat_tts}
    return "azure" in uses and settings.azure_speech_key is None


def _azure_speech(settings: Settings) -> tuple[str | None, str]:
    """The key (None: Entra ID) and the region; raises ConfigurationError (one line)."""
    key, region = settings.azure_speech_key, settings.azure_speech_region
    if not region or (key is None and not settings.azure_speech_resource_id):
        raise ConfigurationError(
            "PIPECAT_STT/TTS=azure needs AZURE_SPEECH_REGION and either AZURE_SPEECH_KEY or "
            "AZURE_SPEECH_RESOURCE_ID"
        )
    return (key.get_secret_value() if key is not None else None), region


def _speech_authorization(settings: Settings, tokens: EntraTokens | None) -> SpeechAuthorization:
    from app.backends.pipecat.speech import SpeechAuthorization

    if tokens is None:
        raise ConfigurationError(
            "PIPECAT_STT/TTS=azure without AZURE_SPEECH_KEY needs the app's Entra credential"
        )
    return SpeechAuthorization(tokens, settings.azure_speech_resource_id or "")
