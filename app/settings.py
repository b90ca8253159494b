"""The service's one settings class, read from the environment and `.env`.

Every field is documented in `.env.example`; the environment variable is the field name in
upper case. Nothing else in the package reads `os.environ`, but for the composition root
handing it to the agent tools file (`${VAR}` in its headers: the process environment, not `.env`).
"""

from __future__ import annotations

import re
import socket
from functools import cached_property
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import (
    AnyHttpUrl,
    Field,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.addresses import TARGET_PROBLEM, target_kind
from app.audio_prompt import load_prompt
from app.connection_string import ConnectionString
from app.settings_backends import backend_problem
from app.urls import (
    JWKS_EXAMPLE,
    LOOPBACK,
    SECRET_URLS,
    SETTING_URLS,
    quoted_url,
    url_problem,
)

AudioFormatName = Literal["pcm16KMono", "pcm24KMono"]
AudioChannel = Literal["mixed", "unmixed"]
BackendName = Literal[
    "echo", "recorder", "websocket", "openai", "azure-openai", "voice-live", "pipecat"
]
PipecatSpeech = Literal["openai", "azure"]
PipecatLlm = Literal["openai", "azure-openai"]
TurnDetection = Literal["server_vad", "semantic_vad", "none"]
VoiceLiveTurnDetection = Literal[
    "azure_semantic_vad", "azure_semantic_vad_multilingual", "server_vad", "none"
]
EndOfUtterance = Literal["none", "semantic_detection_v1", "semantic_detection_v1_multilingual"]

DEFAULT_LOOPBACK = "127.0.0.1"
EVERY_INTERFACE = "0.0.0.0"  # what a container and a real ACS resource need
DEFAULT_ACS_JWKS_URL = "https://acscallautomation.communication.azure.com/calling/keys"
DEFAULT_ACS_JWT_ISSUER = "https://acscallautomation.communication.azure.com"


class ConfigurationError(Exception):
    """Settings that cannot work; the message is one line naming the settings to fix."""


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment and `.env`; raises ConfigurationError in one line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        raise ConfigurationError(describe_invalid_settings(exc)) from None


def describe_invalid_settings(exc: ValidationError) -> str:
    """A ValidationError of Settings as one line: `NAME: problem; NAME: problem`."""
    problems = []
    for error in exc.errors(include_url=False, include_input=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        names = [str(part) for part in error["loc"] if isinstance(part, str)]
        problems.append(f"{names[0].upper()}: {message}" if names else message)
    return "; ".join(problems)


class Settings(BaseSettings):
    """All configuration of the bridge."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=False,
        # `.env.example` leaves unset values empty: empty means "use the default".
        env_ignore_empty=True,
    )

    # --- ACS and public addresses -------------------------------------------------------
    acs_connection_string: SecretStr | None = None
    acs_endpoint: AnyHttpUrl | None = None
    public_base_url: AnyHttpUrl | None = None
    acs_operation_timeout_s: float = Field(default=15.0, gt=0)

    # --- Media streaming options sent when answering / creating a call ---------------
    media_audio_format: AudioFormatName = "pcm16KMono"
    media_audio_channel: AudioChannel = "mixed"
    media_start_on_answer: bool = True
    media_bidirectional: bool = True
    media_dtmf: bool = False

    # --- Media plane ---------------------------------------------------------------------
    media_backend: BackendName = "echo"
    echo_delay_ms: int = Field(default=0, ge=0, le=10_000)
    recordings_dir: Path = Path("recordings")
    backend_ws_url: str | None = None
    backend_ws_auth_token: SecretStr | None = None
    backend_ws_sample_rate: int | None = Field(default=None, ge=8000, le=48000)
    media_outbound_lead_ms: int = Field(default=80, ge=20, le=1000)
    media_outbound_buffer_ms: int = Field(default=30_000, ge=100)
    media_inbound_queue_frames: int = Field(default=100, ge=1)
    max_concurrent_calls: int = Field(default=200, ge=1)
    media_idle_timeout_s: float = Field(default=30.0, gt=0)
    max_call_duration_s: float = Field(default=4 * 3600.0, gt=0)
    # A media socket that drops while streaming is on: its backend waits this long for ACS to
    # re-establish the stream (0: no waiting, the backend closes with the socket).
    media_resume_window_s: float = Field(default=15.0, ge=0)
    media_max_message_bytes: int = Field(default=256 * 1024, ge=4096)
    # Off: on the bench, accepting permessage-deflate cost +13 % CPU and +51 KiB per call for
    # base64 audio that compresses by about a quarter.
    media_ws_compression: bool = False

    # --- OpenAI / Azure OpenAI Realtime -------------------------------------------------
    openai_api_key: SecretStr | None = None
    openai_realtime_model: str = "gpt-realtime"
    openai_base_url: str | None = None
    azure_openai_endpoint: AnyHttpUrl | None = None
    azure_openai_deployment: str | None = None
    azure_openai_api_key: SecretStr | None = None
    realtime_instructions: str = (
        "You are a helpful voice assistant on a phone call. Keep answers short and natural."
    )
    realtime_instructions_file: Path | None = None
    realtime_voice: str = "alloy"
    realtime_turn_detection: TurnDetection = "server_vad"
    realtime_vad_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    realtime_vad_prefix_padding_ms: int = Field(default=300, ge=0)
    realtime_vad_silence_duration_ms: int = Field(default=500, ge=0)
    realtime_vad_eagerness: Literal["low", "medium", "high", "auto"] = "auto"
    realtime_input_transcription: bool = True
    realtime_transcription_model: str = "gpt-4o-mini-transcribe"
    realtime_greeting: str | None = None
    # One 20 ms frame: caller audio is on its way to the model as it arrives (larger batches
    # save a little CPU and add up to their length to every turn).
    realtime_append_ms: int = Field(default=20, ge=20, le=1000)

    # --- Azure Voice Live (MEDIA_BACKEND=voice-live; instructions, greeting and tools are the
    # REALTIME_* and AGENT_* ones) --------------------------------------------------------------
    azure_voicelive_endpoint: AnyHttpUrl | None = None
    azure_voicelive_api_key: SecretStr | None = None
    azure_voicelive_model: str = "gpt-realtime"
    azure_voicelive_agent_id: str | None = None
    azure_voicelive_agent_project: str | None = None
    azure_voicelive_api_version: str | None = None
    azure_voicelive_voice: str = Field(default="en-US-Ava:DragonHDLatestNeural", min_length=1)
    azure_voicelive_turn_detection: VoiceLiveTurnDetection = "azure_semantic_vad"
    azure_voicelive_vad_threshold: float = Field(default=0.3, ge=0.0, le=1.0)
    azure_voicelive_vad_prefix_padding_ms: int = Field(default=300, ge=0)
    azure_voicelive_vad_silence_duration_ms: int = Field(default=500, ge=0)
    azure_voicelive_remove_filler_words: bool = False
    azure_voicelive_end_of_utterance: EndOfUtterance = "none"
    azure_voicelive_eou_threshold: Literal["low", "medium", "high", "default"] = "default"
    azure_voicelive_eou_timeout_ms: int = Field(default=1000, ge=0, le=10_000)
    azure_voicelive_noise_suppression: bool = True
    azure_voicelive_echo_cancellation: bool = True
    azure_voicelive_input_transcription: bool = True
    azure_voicelive_transcription_model: str = Field(default="azure-speech", min_length=1)
    azure_voicelive_transcription_language: str | None = None

    # --- Pipecat (MEDIA_BACKEND=pipecat; prompt, greeting and tools are the REALTIME_* and
    # AGENT_* ones) -------------------------------------------------------------------------------
    pipecat_bot: str | None = None  # module:function or path/to/file.py:function; None: bundled
    pipecat_stt: PipecatSpeech = "openai"
    pipecat_llm: PipecatLlm = "openai"
    pipecat_tts: PipecatSpeech = "openai"
    pipecat_stt_model: str = Field(default="gpt-4o-mini-transcribe", min_length=1)
    pipecat_llm_model: str = Field(default="gpt-4.1-mini", min_length=1)
    pipecat_tts_model: str = Field(default="gpt-4o-mini-tts", min_length=1)
    pipecat_tts_voice: str = Field(default="alloy", min_length=1)
    pipecat_language: str = Field(default="en-US", min_length=2)
    azure_speech_key: SecretStr | None = None
    azure_speech_region: str | None = None
    # Without a key: Entra ID for this resource (/subscriptions/.../accounts/<name>)
    azure_speech_resource_id: str | None = None
    azure_speech_voice: str = Field(default="en-US-AvaMultilingualNeural", min_length=1)

    # --- Agent actions (tools of the Realtime backends, call control) -----------------------
    agent_end_call_tool: bool = True
    agent_dtmf_tool: bool = False
    # JSON object of names to targets: the only destinations a transfer may reach.
    transfer_targets: dict[str, str] = Field(default_factory=dict)
    transfer_source_caller_id: str | None = Field(default=None, pattern=r"^\+[1-9]\d{6,14}$")
    agent_tools_file: Path | None = None

    # --- No dead air: what the caller gets when the call has no working backend -------------
    # hang_up | transfer:<name from TRANSFER_TARGETS> | keep (silence; for debugging)
    backend_failover: str = "hang_up"
    backend_failover_after_s: float = Field(default=10.0, gt=0, le=3600)
    # A WAV file (16-bit PCM, mono) played to the caller before the failover action.
    backend_failover_prompt: Path | None = None

    # --- Lines: an agent per called number (app/agents); each call's record when it ends ----
    agents_file: Path | None = None
    call_end_webhook_url: AnyHttpUrl | None = None
    call_end_webhook_secret: SecretStr | None = None
    call_end_webhook_timeout_s: float = Field(default=10.0, gt=0, le=120)
    call_end_webhook_retry_s: float = Field(default=2.0, gt=0, le=60)
    call_end_webhook_retry_for_s: float = Field(default=60.0, ge=0, le=24 * 3600)

    # --- Security --------------------------------------------------------------------------
    acs_resource_id: str | None = None
    acs_jwks_url: str = DEFAULT_ACS_JWKS_URL
    acs_jwt_issuer: str = DEFAULT_ACS_JWT_ISSUER
    acs_jwt_leeway_s: int = Field(default=60, ge=0, le=600)
    jwks_min_refresh_s: float = Field(default=5.0, ge=0)
    eventgrid_secret: SecretStr | None = None
    eventgrid_entra_audience: str | None = None
    eventgrid_entra_tenant_id: str | None = None
    control_api_key: SecretStr | None = None
    allow_insecure_development: bool = False
    max_request_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    request_body_timeout_s: float = Field(default=30.0, gt=0)

    # --- Scale-out ---------------------------------------------------------------------------
    redis_url: SecretStr | None = None
    redis_key_prefix: str = "acsbridge:"
    call_state_ttl_s: int = Field(default=24 * 3600, ge=60)
    instance_id: str = Field(default_factory=socket.gethostname)

    # --- Operations ----------------------------------------------------------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_format: Literal["text", "json"] = "text"
    applicationinsights_connection_string: SecretStr | None = None
    # Unset: 127.0.0.1 with the embedded emulator and no CONTROL_API_KEY, else 0.0.0.0 (what
    # `acs-bridge serve` listens on; `uvicorn app.main:app` takes its own --host).
    host: str | None = None
    port: int = Field(default=8000, ge=0, le=65535)
    forwarded_allow_ips: str = "*"
    # On SIGTERM: how long running calls may go on (readiness off, new calls refused) before
    # they are ended; keep it under the platform's stop grace (App Service: 5 s by default).
    shutdown_drain_s: float = Field(default=2.0, ge=0, le=600)

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("transfer_targets")
    @classmethod
    def _valid_transfer_targets(cls, value: dict[str, str]) -> dict[str, str]:
        for name, target in value.items():
            if not re.fullmatch(r"[A-Za-z0-9_\-]{1,64}", name):
                raise ValueError(f"name {name!r}: use 1-64 letters, digits, _ or -")
            if target_kind(target) is None:
                raise ValueError(f"{name!r}: {TARGET_PROBLEM}")
        return value

    @field_validator("backend_failover")
    @classmethod
    def _valid_failover(cls, value: str) -> str:
        if value in ("hang_up", "keep") or re.fullmatch(r"transfer:[A-Za-z0-9_\-]{1,64}", value):
            return value
        raise ValueError(
            f"{value!r} is not a failover: use hang_up, keep, or transfer:<a TRANSFER_TARGETS name>"
        )

    @field_validator("backend_failover_prompt")
    @classmethod
    def _readable_prompt(cls, value: Path | None) -> Path | None:
        if value is not None:
            load_prompt(value)
        return value

    @field_validator("acs_connection_string")
    @classmethod
    def _valid_connection_string(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and value.get_secret_value():
            ConnectionString.parse(value.get_secret_value())
            return value
        return None

    @field_validator(*SETTING_URLS, mode="before")
    @classmethod
    def _valid_url(cls, value: object, info: ValidationInfo) -> object:
        # Before pydantic's own URL parsing, whose message names neither the value nor the fix.
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
        if text is not None and str(text):
            name = str(info.field_name)
            problem = url_problem(str(text), *SETTING_URLS[name], secret=name in SECRET_URLS)
            if problem is not None:
                raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        jwks = urlsplit(self.acs_jwks_url)
        if jwks.scheme == "http" and jwks.hostname not in LOOPBACK:
            # Whoever can answer a plain-http key fetch can mint callback and media tokens.
            raise ValueError(
                f"ACS_JWKS_URL: {quoted_url(self.acs_jwks_url)} is not an https URL: "
                f"use {JWKS_EXAMPLE}"
            )
        if self.acs_configured and self.public_base_url is None:
            # ACS needs an absolute callback URL and media transport URL to answer any call.
            raise ValueError(
                "ACS is configured but PUBLIC_BASE_URL is not set: set it to the https origin "
                "ACS reaches this service at (dev tunnel or App Service URL)"
            )
        if (self.azure_voicelive_agent_id is None) != (self.azure_voicelive_agent_project is None):
            raise ValueError(
                "AZURE_VOICELIVE_AGENT_ID and AZURE_VOICELIVE_AGENT_PROJECT go together: "
                "set both to talk to a Foundry agent, or neither for AZURE_VOICELIVE_MODEL"
            )
        failover_target = self.failover_transfer_target
        if failover_target is not None and failover_target not in self.transfer_targets:
            raise ValueError(
                f"BACKEND_FAILOVER=transfer:{failover_target} names no TRANSFER_TARGETS entry: "
                "add it there (the operator's queue) or use hang_up"
            )
        if self.call_end_webhook_url is not None and not self.call_end_webhook_secret:
            # An unsigned record of every call (transcripts included) is not to be sent anywhere.
            raise ValueError("CALL_END_WEBHOOK_URL needs CALL_END_WEBHOOK_SECRET to sign with")
        problem = backend_problem(self)
        if problem is not None:
            raise ValueError(problem)
        return self

    # --- Derived values ------------------------------------------------------------------------
    @property
    def acs_configured(self) -> bool:
        """True when a real ACS resource (connection string or endpoint) is configured."""
        return self.acs_connection_string is not None or self.acs_endpoint is not None

    @property
    def listen_host(self) -> str:
        """HOST if set; else 127.0.0.1 for a first run (the embedded emulator and no
        CONTROL_API_KEY: whoever reaches the port could place calls), else every interface."""
        if self.host:
            return self.host
        if not self.acs_configured and self.control_api_key is None:
            return DEFAULT_LOOPBACK
        return EVERY_INTERFACE

    @property
    def failover_transfer_target(self) -> str | None:
        """The TRANSFER_TARGETS name of `BACKEND_FAILOVER=transfer:<name>`, else None."""
        action, _, name = self.backend_failover.partition(":")
        return name if action == "transfer" else None

    @cached_property
    def connection_string(self) -> ConnectionString | None:
        """The parsed connection string, if one is set."""
        if self.acs_connection_string is None:
            return None
        return ConnectionString.parse(self.acs_connection_string.get_secret_value())

    @property
    def sample_rate(self) -> int:
        """The call's audio sample rate implied by MEDIA_AUDIO_FORMAT."""
        return 24000 if self.media_audio_format == "pcm24KMono" else 16000

    def public_url(self, path: str) -> str:
        """An absolute https URL on the public origin (for callback URIs)."""
        if self.public_base_url is None:
            raise ValueError("PUBLIC_BASE_URL is not set")
        return str(self.public_base_url).rstrip("/") + path

    def public_ws_url(self, path: str) -> str:
        """The wss:// (or ws:// for a plain-http origin) URL of a WebSocket route."""
        url = self.public_url(path)
        if url.startswith("https://"):
            return "wss://" + url[len("https://") :]
        return "ws://" + url[len("http://") :]
