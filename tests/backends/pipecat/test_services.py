"""The bundled bot's services, as the settings choose them (built, not connected)."""

from __future__ import annotations

from typing import Any

import pytest
from pipecat.services.azure.llm import AzureLLMService
from pipecat.services.azure.stt import AzureSTTService
from pipecat.services.azure.tts import AzureTTSService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService

from app.backends.pipecat.services import language_model, speech_to_text, text_to_speech
from app.settings import ConfigurationError, Settings


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, media_backend="pipecat", **values)


def test_openai_services_use_the_openai_compatible_endpoint() -> None:
    chosen = settings(
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",
        pipecat_llm_model="my-model",
        pipecat_tts_voice="coral",
    )
    stt = speech_to_text(chosen, 16000)
    llm = language_model(chosen, "Be brief.")
    tts = text_to_speech(chosen)
    assert isinstance(stt, OpenAISTTService)
    assert isinstance(llm, OpenAILLMService)
    assert isinstance(tts, OpenAITTSService)
    assert str(llm._client.base_url) == "http://127.0.0.1:9/v1/"
    llm_settings: Any = llm._settings
    tts_settings: Any = tts._settings
    assert llm_settings.model == "my-model"
    assert llm_settings.system_instruction == "Be brief."
    assert tts_settings.voice == "coral"


def test_azure_speech_and_azure_openai_with_keys() -> None:
    chosen = settings(
        pipecat_stt="azure",
        pipecat_tts="azure",
        pipecat_llm="azure-openai",
        azure_speech_key="speech-key",
        azure_speech_region="westeurope",
        azure_openai_endpoint="https://contoso.openai.azure.com",
        azure_openai_api_key="aoai-key",
        pipecat_llm_model="contoso-chat",
    )
    assert isinstance(speech_to_text(chosen, 16000), AzureSTTService)
    assert isinstance(text_to_speech(chosen), AzureTTSService)
    llm = language_model(chosen, "Be brief.")
    assert isinstance(llm, AzureLLMService)
    assert str(llm._client.base_url).startswith("https://contoso.openai.azure.com/openai/v1")


async def test_azure_openai_without_a_key_takes_the_apps_entra_token() -> None:
    chosen = settings(
        openai_api_key="sk-test",
        pipecat_llm="azure-openai",
        azure_openai_endpoint="https://contoso.openai.azure.com",
    )

    async def token() -> str:
        return "entra-token"

    assert isinstance(language_model(chosen, "Be brief.", token), AzureLLMService)


def test_an_unknown_language_refuses_in_one_line() -> None:
    chosen = settings(openai_api_key="sk-test", pipecat_language="xx-Klingon")
    with pytest.raises(ConfigurationError, match="PIPECAT_LANGUAGE"):
        speech_to_text(chosen, 16000)
