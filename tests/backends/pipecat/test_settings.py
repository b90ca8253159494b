"""MEDIA_BACKEND=pipecat refuses to start, in one line, when it cannot work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from app.settings import ConfigurationError, load_settings

ROOT = Path(__file__).resolve().parents[3]

# Runs the real `acs-bridge serve` in a Python where `pipecat` cannot be imported or found.
WITHOUT_PIPECAT = """
import importlib.abc, sys

class NoPipecat(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "pipecat" or name.startswith("pipecat."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoPipecat())
from app.cli import main
sys.exit(main(["serve", "--port", "0"]))
"""


def test_without_the_extra_the_service_refuses_to_start_saying_how_to_install_it(
    tmp_path: Path,
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("ACS_", "MEDIA_", "PIPECAT_", "OPENAI_"))
    }
    env.update(MEDIA_BACKEND="pipecat", OPENAI_API_KEY="sk-unused", PYTHONPATH=str(ROOT))
    done = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", WITHOUT_PIPECAT],
        cwd=tmp_path,  # no .env
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("acs-bridge: cannot start: MEDIA_BACKEND=pipecat needs the pipecat")
    assert "uv sync --extra pipecat" in lines[0]


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"pipecat_bot": "tests.backends.pipecat.no_such_bots:run_bot"}, "no such module"),
        ({"pipecat_bot": "missing/bot.py:run_bot"}, "no such module or file"),
        ({"pipecat_bot": "tests.backends.pipecat.bots"}, "module:function"),
        ({}, "OPENAI_API_KEY"),
        ({"openai_api_key": "sk", "pipecat_tts": "azure"}, "AZURE_SPEECH_KEY"),
        ({"openai_api_key": "sk", "pipecat_stt": "azure"}, "AZURE_SPEECH_RESOURCE_ID"),
        (
            {"openai_api_key": "sk", "pipecat_stt": "azure", "azure_speech_resource_id": "/x"},
            "AZURE_SPEECH_REGION",
        ),
        (
            {"openai_api_key": "sk", "pipecat_tts": "azure", "azure_speech_key": "k"},
            "AZURE_SPEECH_REGION",
        ),
        ({"openai_api_key": "sk", "pipecat_llm": "azure-openai"}, "AZURE_OPENAI_ENDPOINT"),
    ],
)
def test_settings_that_cannot_work_refuse_in_one_line(values: dict[str, Any], names: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        load_settings(_env_file=None, media_backend="pipecat", **values)
    assert names in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize("auth", [{"azure_speech_key": "k"}, {"azure_speech_resource_id": "/x"}])
def test_azure_speech_starts_with_a_region_and_a_key_or_a_resource_id(
    auth: dict[str, str],
) -> None:
    settings = load_settings(
        _env_file=None,
        media_backend="pipecat",
        openai_api_key="sk",
        pipecat_stt="azure",
        pipecat_tts="azure",
        azure_speech_region="westeurope",
        **auth,
    )
    assert settings.pipecat_stt == "azure"


def test_a_bot_of_ones_own_needs_no_service_settings() -> None:
    settings = load_settings(
        _env_file=None, media_backend="pipecat", pipecat_bot="tests.backends.pipecat.bots:echo_bot"
    )
    assert settings.pipecat_bot == "tests.backends.pipecat.bots:echo_bot"
