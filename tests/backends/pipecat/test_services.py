"""The bundled bot's services, as the settings choose them (built, not connected)."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from pipecat.clocks.system_clock import SystemClock
from pipecat.processors.frame_processor import FrameProcessorSetup
from pipecat.services.azure.llm import AzureLLMService
from pipecat.services.azure.stt import AzureSTTService
from pipecat.services.azure.tts import AzureTTSService
from pipecat.services.openai.llm import OpenAILLMService
from pipecat.services.openai.stt import OpenAISTTService
from pipecat.services.openai.tts import OpenAITTSService
from pipecat.utils.asyncio.task_manager import TaskManager

from app.backends.pipecat import _token_provider
from app.backends.pipecat.services import language_model, speech_to_text, text_to_speech
from app.backends.pipecat.speech import (
    EntraAzureSTTService,
    EntraAzureTTSService,
    SpeechAuthorization,
)
from app.backends.realtime import connection
from app.backends.realtime.connection import EntraTokenProvider
from app.settings import ConfigurationError, Settings

SPEECH_ID = (
    "/subscriptions/0000/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/speech"
)
SCOPE = "https://cognitiveservices.azure.com/.default"


class FakeCredential:
    """An azure-identity async credential: token-1, token-2, ... each valid for an hour."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now
        self.scopes: list[tuple[str, ...]] = []
        self.closed = False

    async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        self.scopes.append(scopes)
        return AccessToken(f"token-{len(self.scopes)}", int(self.now + 3600))

    async def close(self) -> None:
        self.closed = True


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


def entra_speech(**values: Any) -> Settings:
    return settings(
        openai_api_key="sk-test",
        pipecat_stt="azure",
        pipecat_tts="azure",
        azure_speech_region="westeurope",
        azure_speech_resource_id=SPEECH_ID,
        pipecat_language="de-DE",
        **values,
    )


async def test_azure_speech_without_a_key_builds_its_config_from_an_entra_token() -> None:
    credential = FakeCredential()
    tokens = EntraTokenProvider(credential, clock=lambda: credential.now)
    stt = speech_to_text(entra_speech(), 16000, tokens)
    tts = text_to_speech(entra_speech(), tokens)
    assert isinstance(stt, EntraAzureSTTService)
    assert isinstance(tts, EntraAzureTTSService)

    await stt.authorize()
    await tts.authorize()
    for config in (stt._speech_config, tts._speech_config):
        assert config is not None
        assert config.authorization_token == f"aad#{SPEECH_ID}#token-1"
        assert config.region == "westeurope"
        assert config.subscription_key == ""
    assert stt._speech_config.speech_recognition_language == "de-DE"
    assert credential.scopes == [(SCOPE,)]  # one cached token for both services


async def test_a_renewed_token_replaces_the_one_the_recognizer_and_synthesizer_hold() -> None:
    credential = FakeCredential()
    tokens = EntraTokenProvider(credential, clock=lambda: credential.now)
    stt = speech_to_text(entra_speech(), 16000, tokens)
    tts = text_to_speech(entra_speech(), tokens)
    assert isinstance(stt, EntraAzureSTTService)
    assert isinstance(tts, EntraAzureTTSService)
    await stt.authorize()
    expires_on = await tts.authorize()
    tts._synthesizer_from_config()  # what its setup does after authorize()
    assert tts._speech_synthesizer is not None
    assert tts._speech_synthesizer.authorization_token == f"aad#{SPEECH_ID}#token-1"

    credential.now = expires_on - 60  # within the renewal margin
    renewal = SpeechAuthorization(tokens, SPEECH_ID, min_wait_s=0, clock=lambda: credential.now)
    renewed: list[str] = []
    done = asyncio.Event()

    def use(authorization: str) -> None:
        renewed.append(authorization)
        stt.use_token(authorization)
        tts.use_token(authorization)
        done.set()

    refresher = asyncio.create_task(renewal.keep_fresh(expires_on, use))
    await asyncio.wait_for(done.wait(), 5)
    refresher.cancel()

    assert renewed[0] == f"aad#{SPEECH_ID}#token-2"
    assert stt._speech_config.authorization_token == renewed[0]
    assert tts._speech_config is not None
    assert tts._speech_config.authorization_token == renewed[0]
    assert tts._speech_synthesizer.authorization_token == renewed[0]


async def test_the_synthesizer_is_set_up_on_the_token_and_stops_renewing_at_cleanup() -> None:
    # Pipecat's TTS setup connects nothing (the recognizer's would): run the real one.
    credential = FakeCredential()
    tts = text_to_speech(entra_speech(), EntraTokenProvider(credential))
    assert isinstance(tts, EntraAzureTTSService)
    setup = FrameProcessorSetup(
        clock=SystemClock(),  # type: ignore[no-untyped-call]
        task_manager=TaskManager(loop=asyncio.get_running_loop()),
        pipeline_worker=None,  # type: ignore[arg-type]
        audio_out_sample_rate=16000,
    )
    await tts.setup(setup)
    try:
        assert tts._speech_config is not None
        assert tts._speech_config.speech_synthesis_language == "de-DE"
        assert tts._speech_synthesizer is not None
        assert tts._speech_synthesizer.authorization_token == f"aad#{SPEECH_ID}#token-1"
        assert tts._refresher is not None
        refresher = tts._refresher
    finally:
        await tts.cleanup()
    assert tts._refresher is None
    assert refresher.done()


async def test_a_failed_renewal_keeps_the_token_and_tries_again() -> None:
    class Flaky(FakeCredential):
        async def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            if len(self.scopes) == 0:
                self.scopes.append(scopes)
                raise OSError("IMDS unreachable")
            return await super().get_token(*scopes, **kwargs)

    credential = Flaky()
    renewal = SpeechAuthorization(
        EntraTokenProvider(credential, clock=lambda: credential.now),
        SPEECH_ID,
        retry_s=0,
        min_wait_s=0,
        clock=lambda: credential.now,
    )
    renewed: list[str] = []
    done = asyncio.Event()

    def use(authorization: str) -> None:
        renewed.append(authorization)
        done.set()

    refresher = asyncio.create_task(renewal.keep_fresh(credential.now, use))
    await asyncio.wait_for(done.wait(), 5)
    refresher.cancel()
    assert renewed == [f"aad#{SPEECH_ID}#token-2"]


async def test_the_apps_one_credential_serves_speech_without_a_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    credential = FakeCredential()
    monkeypatch.setattr(connection, "default_azure_credential", lambda: credential)
    async with AsyncExitStack() as stack:
        tokens = await _token_provider(entra_speech(), stack)
        assert tokens is not None
        stt = speech_to_text(entra_speech(), 16000, tokens)
        assert isinstance(stt, EntraAzureSTTService)
        await stt.authorize()
    assert credential.scopes == [(SCOPE,)]
    assert credential.closed
    with_key = entra_speech(azure_speech_key="speech-key")
    async with AsyncExitStack() as stack:
        assert await _token_provider(with_key, stack) is None


def test_the_key_path_is_pipecats_own_service() -> None:
    chosen = entra_speech(azure_speech_key="speech-key")
    stt = speech_to_text(chosen, 16000)
    tts = text_to_speech(chosen)
    assert type(stt) is AzureSTTService
    assert type(tts) is AzureTTSService
    assert stt._speech_config.subscription_key == "speech-key"
    assert stt._speech_config.region == "westeurope"


def test_speech_without_a_key_or_a_resource_id_refuses_in_one_line() -> None:
    chosen = settings(openai_api_key="sk-test")
    chosen.pipecat_stt = "azure"
    chosen.azure_speech_region = "westeurope"
    with pytest.raises(ConfigurationError, match="AZURE_SPEECH_RESOURCE_ID") as refused:
        speech_to_text(chosen, 16000)
    assert "\n" not in str(refused.value)
