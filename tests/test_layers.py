"""Settings and the backend seam's plain types sit at the bottom: importing them, or the agent
tools the backends build on, loads nothing above them (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded_app_packages(module: str) -> set[str]:
    code = (
        f"import sys, {module}; "
        "print(' '.join(sorted({m.split('.')[1] for m in sys.modules "
        "if m.startswith('app.') and m.count('.') >= 1})))"
    )
    result = subprocess.run(  # noqa: S603 (this interpreter, a fixed script)
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return set(result.stdout.split())


# The settings and the plain modules they are checked with (stdlib and pydantic only).
BOTTOM = {
    "addresses",
    "audio_prompt",
    "connection_string",
    "settings",
    "settings_backends",
    "urls",
}


@pytest.mark.parametrize(
    ("module", "allowed"),
    [
        ("app.settings", {*BOTTOM}),
        ("app.seam", {*BOTTOM, "seam"}),
        ("app.agent.runner", {*BOTTOM, "agent", "seam", "security"}),
    ],
)
def test_the_bottom_layers_import_nothing_above_them(module: str, allowed: set[str]) -> None:
    assert _loaded_app_packages(module) <= allowed
