"""The `baseline` server: the service of another git revision, for before/after comparisons.

The revision is checked out as a detached git worktree in a temporary directory and synced
into a venv of its own (`uv sync --locked --no-dev`, UV_PROJECT_ENVIRONMENT outside the
worktree); the worktree is removed and the directory deleted when the block exits. Only the
worktree list of the repository changes meanwhile: no branch, index or working-tree file.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class BaselineCheckout:
    """A revision ready to run: its commit and its venv's interpreter."""

    rev: str
    commit: str
    python: Path


class BaselineError(RuntimeError):
    """The revision could not be checked out or synced."""


@contextlib.contextmanager
def baseline_checkout(rev: str, repo: Path = REPO_ROOT) -> Iterator[BaselineCheckout]:
    """Check out `rev` with its own venv for the block; removed afterwards."""
    commit = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    scratch = Path(tempfile.mkdtemp(prefix="bench-baseline-"))
    tree, venv = scratch / "tree", scratch / "venv"
    try:
        _git(repo, "worktree", "add", "--detach", str(tree), commit)
        try:
            _sync(tree, venv)
            yield BaselineCheckout(rev, commit, venv / "bin" / "python")
        finally:
            with contextlib.suppress(BaselineError):
                _git(repo, "worktree", "remove", "--force", str(tree))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        with contextlib.suppress(BaselineError):
            _git(repo, "worktree", "prune")


def _sync(tree: Path, venv: Path) -> None:
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise BaselineError("the baseline needs uv on PATH")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT")}
    env["UV_PROJECT_ENVIRONMENT"] = str(venv)
    print(f"baseline: uv sync --locked --no-dev in {tree}", file=sys.stderr, flush=True)
    done = subprocess.run(  # noqa: S603 (uv, with our arguments)
        [uv, "sync", "--locked", "--no-dev", "--project", str(tree)],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(f"uv sync failed in the baseline worktree:\n{done.stderr[-2000:]}")


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(  # noqa: S603
        ["git", "-C", str(repo), *args],  # noqa: S607 (git from PATH, like a developer)
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(f"git {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout
