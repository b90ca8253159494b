"""Azure AI Speech (PIPECAT_STT/TTS=azure) with Microsoft Entra ID instead of AZURE_SPEECH_KEY.

Microsoft's documented form for SpeechRecognizer and SpeechSynthesizer: an Entra token for
`https://cognitiveservices.azure.com/.default` (the app's one DefaultAzureCredential, managed
identity in Azure) as `SpeechConfig(auth_token="aad#<resource id>#<token>", region=<region>)`.
The resource needs a custom domain name and the identity the "Cognitive Services Speech User"
role. The SDK copies the token into each recognizer and synthesizer, so a renewed token is set
on theirs (`authorization_token`) before the old one expires: a call may outlive a token.

Pipecat's AzureSTTService and AzureTTSService accept only a key: these subclasses replace how
their SpeechConfig is built and leave the rest to Pipecat.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol

from azure.cognitiveservices.speech import (
    ServicePropertyChannel,
    SpeechConfig,
    SpeechSynthesizer,
)
from azure.core.credentials import AccessToken
from pipecat.processors.frame_processor import FrameProcessor, FrameProcessorSetup
from pipecat.services.azure.stt import AzureSTTService
from pipecat.services.azure.tts import AzureTTSService, sample_rate_to_output_format
from pipecat.utils.types import assert_given

log = logging.getLogger(__name__)

# Pipecat's services insist on a key; theirs is replaced before it is ever used.
NO_KEY = "unused: Microsoft Entra ID"
REFRESH_MARGIN_S = 300.0  # renew this long before the token expires
RETRY_S = 30.0  # after a failed renewal (the old token is still good for a while)


class TokenSource(Protocol):
    """The app's cached Entra token for the Cognitive Services scope (`EntraTokenProvider`)."""

    async def token(self) -> AccessToken: ...


class SpeechAuthorization:
    """The Speech SDK's authorization token, `aad#<resource id>#<Entra token>`, kept fresh."""

    def __init__(
        self,
        tokens: TokenSource,
        resource_id: str,
        *,
        margin_s: float = REFRESH_MARGIN_S,
        retry_s: float = RETRY_S,
        min_wait_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.tokens = tokens
        self.resource_id = resource_id
        self._margin_s = margin_s
        self._retry_s = retry_s
        self._min_wait_s = min_wait_s
        self._clock = clock

    async def current(self) -> tuple[str, float]:
        """The authorization token and when its Entra token expires (epoch seconds)."""
        token = await self.tokens.token()
        return f"aad#{self.resource_id}#{token.token}", float(token.expires_on)

    async def keep_fresh(self, expires_on: float, use: Callable[[str], None]) -> None:
        """Until cancelled: a renewed token handed to `use` before each one expires."""
        while True:
            await asyncio.sleep(max(expires_on - self._margin_s - self._clock(), self._min_wait_s))
            try:
                authorization, expires_on = await self.current()
            except Exception as exc:  # the credential's errors vary; the token in use still works
                log.warning("Azure Speech: renewing the Entra token failed: %r", exc)
                expires_on = self._clock() + self._margin_s + self._retry_s
                continue
            use(authorization)


class _RenewedToken(FrameProcessor):
    """A service's token renewed from `setup` (`_keep_fresh`) until `cleanup`, in a task of the
    processor's own; the service says where a renewed token goes (`use_token`)."""

    _authorization: SpeechAuthorization
    _refresher: asyncio.Task[None] | None = None

    def use_token(self, authorization: str) -> None:
        raise NotImplementedError

    def _keep_fresh(self, expires_on: float) -> None:
        renewal = self._authorization.keep_fresh(expires_on, self.use_token)
        self._refresher = self.create_task(renewal, "speech-token")

    async def cleanup(self) -> None:
        if self._refresher is not None:
            await self.cancel_task(self._refresher)
            self._refresher = None
        await super().cleanup()  # type: ignore[no-untyped-call]


class EntraAzureSTTService(_RenewedToken, AzureSTTService):
    """Pipecat's AzureSTTService on an Entra token: its SpeechConfig, built in `__init__` from a
    key, is rebuilt from a token in `setup`, before Pipecat's `setup` builds the recognizer."""

    def __init__(self, *, authorization: SpeechAuthorization, region: str, **kwargs: Any) -> None:
        super().__init__(api_key=NO_KEY, region=region, **kwargs)
        self._authorization = authorization
        self._entra_region = region

    async def authorize(self) -> float:
        """A SpeechConfig from a fresh token (Pipecat's language, profanity and silence applied
        again); returns when the token expires."""
        authorization, expires_on = await self._authorization.current()
        self._speech_config = SpeechConfig(
            auth_token=authorization,
            region=self._entra_region,
            speech_recognition_language=self._speech_config.speech_recognition_language,
        )
        self._apply_profanity()  # type: ignore[no-untyped-call]
        self._apply_segmentation_silence_timeout()  # type: ignore[no-untyped-call]
        return expires_on

    def use_token(self, authorization: str) -> None:
        """A renewed token, for the running recognizer and any later one."""
        self._speech_config.authorization_token = authorization
        if self._speech_recognizer is not None:
            self._speech_recognizer.authorization_token = authorization

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        expires_on = await self.authorize()
        await super().setup(setup)
        self._keep_fresh(expires_on)


class EntraAzureTTSService(_RenewedToken, AzureTTSService):
    """Pipecat's AzureTTSService on an Entra token. Pipecat builds its SpeechConfig (from a key)
    and its synthesizer in one `setup`: this `setup` builds the config from a token and then
    does what Pipecat's does after (pipecat-ai 1.14, AzureTTSService.setup)."""

    def __init__(self, *, authorization: SpeechAuthorization, region: str, **kwargs: Any) -> None:
        super().__init__(api_key=NO_KEY, region=region, **kwargs)
        self._authorization = authorization
        self._entra_region = region

    async def authorize(self) -> float:
        """The SpeechConfig from a fresh token; returns when the token expires."""
        authorization, expires_on = await self._authorization.current()
        self._speech_config = SpeechConfig(auth_token=authorization, region=self._entra_region)
        return expires_on

    def use_token(self, authorization: str) -> None:
        """A renewed token, for the synthesizer and any later one."""
        if self._speech_config is not None:
            self._speech_config.authorization_token = authorization
        if self._speech_synthesizer is not None:
            self._speech_synthesizer.authorization_token = authorization

    async def setup(self, setup: FrameProcessorSetup) -> None:  # type: ignore[override]
        expires_on = await self.authorize()
        await super(AzureTTSService, self).setup(setup)  # TTSService's: sets the sample rate
        self._synthesizer_from_config()
        self._keep_fresh(expires_on)

    def _synthesizer_from_config(self) -> None:
        """Pipecat's AzureTTSService.setup after its SpeechConfig is built, unchanged."""
        config = self._speech_config
        assert config is not None  # authorize() built it
        language = assert_given(self._settings.language)
        if language:
            config.speech_synthesis_language = language
        config.set_speech_synthesis_output_format(sample_rate_to_output_format(self.sample_rate))
        config.set_service_property(
            "synthesizer.synthesis.connection.synthesisConnectionImpl",
            "websocket",
            ServicePropertyChannel.UriQueryParameter,
        )
        synthesizer = SpeechSynthesizer(speech_config=config, audio_config=None)
        synthesizer.synthesizing.connect(self._handle_synthesizing)
        synthesizer.synthesis_completed.connect(self._handle_completed)
        synthesizer.synthesis_canceled.connect(self._handle_canceled)
        synthesizer.synthesis_word_boundary.connect(self._handle_word_boundary)
        self._speech_synthesizer = synthesizer
