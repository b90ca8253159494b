# Sourced by the other scripts: make sure uv exists and the locked environment is installed.
#
# uv is taken from PATH or ~/.local/bin; else installed with pipx where pipx is present; else
# into a private virtual environment of the project's (.tools/uv-venv, gitignored) with
# `python3 -m venv` + pip. Never `pip install --user` or --break-system-packages: externally
# managed Pythons (PEP 668: Debian 12, Ubuntu 24.04, Homebrew) refuse the first and are broken
# by the second.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

_bootstrap_fail() {
  echo "bootstrap: $*" >&2
  exit 1
}

# A uv that runs: PATH, ~/.local/bin (pip --user, pipx), pipx's bin dir, the private venv.
_bootstrap_find_uv() {
  local candidate pipx_bin=""
  if command -v pipx >/dev/null 2>&1; then
    pipx_bin=$(pipx environment --value PIPX_BIN_DIR 2>/dev/null) || pipx_bin=""
  fi
  for candidate in "$(command -v uv 2>/dev/null || true)" "$HOME/.local/bin/uv" \
    "${pipx_bin:+$pipx_bin/uv}" "$PWD/.tools/uv-venv/bin/uv"; do
    if [ -n "$candidate" ] && [ -x "$candidate" ] && "$candidate" --version >/dev/null 2>&1; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  return 1
}

# A Python >= 3.11 on PATH (python3 first), or nothing.
_bootstrap_find_python() {
  local name
  for name in python3 python3.13 python3.12 python3.11 python3.14; do
    if command -v "$name" >/dev/null 2>&1 &&
      "$name" -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  return 1
}

_bootstrap_install_uv() {
  local python=$1 venv="$PWD/.tools/uv-venv"
  if command -v pipx >/dev/null 2>&1; then
    echo "bootstrap: installing uv with pipx" >&2
    if pipx install --quiet uv >&2 && _bootstrap_find_uv >/dev/null; then
      return 0
    fi
    echo "bootstrap: pipx could not install uv; trying a private virtual environment" >&2
  fi
  if ! "$python" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    _bootstrap_fail "uv is missing and $python cannot create a virtual environment to install it in: install the venv module (Debian/Ubuntu: sudo apt install python3-venv) or uv itself (https://docs.astral.sh/uv/getting-started/installation/), then rerun"
  fi
  echo "bootstrap: installing uv into $venv" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2 || _bootstrap_fail "could not create $venv with $python -m venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2 ||
    _bootstrap_fail "could not install uv from PyPI into $venv (pip failed, see above)"
}

_bootstrap_python=$(_bootstrap_find_python) || _bootstrap_python=""
_bootstrap_uv=$(_bootstrap_find_uv) || _bootstrap_uv=""
if [ -z "$_bootstrap_python" ] &&
  ! { [ -n "$_bootstrap_uv" ] && "$_bootstrap_uv" python find --no-python-downloads '>=3.11' >/dev/null 2>&1; }; then
  _bootstrap_found="no python3 on PATH"
  if command -v python3 >/dev/null 2>&1; then
    _bootstrap_found="$(command -v python3) is $(python3 --version 2>&1 | head -n 1)"
  fi
  _bootstrap_fail "acs-bridge needs Python 3.11 or newer ($_bootstrap_found); install one (e.g. sudo apt-get install python3.11, brew install python@3.12), then rerun"
fi
if [ -z "$_bootstrap_uv" ]; then
  _bootstrap_install_uv "$_bootstrap_python"
  _bootstrap_uv=$(_bootstrap_find_uv) || _bootstrap_fail "uv was installed but does not run"
fi
# Put that uv (and only it: not the private venv's python) first on PATH for the calling script.
_bootstrap_uv_hidden=""
if [ "$(command -v uv 2>/dev/null || true)" != "$_bootstrap_uv" ]; then
  _bootstrap_uv_hidden=1
  mkdir -p "$PWD/.tools/bin"
  ln -sf "$_bootstrap_uv" "$PWD/.tools/bin/uv"
  export PATH="$PWD/.tools/bin:$PATH"
fi
uv sync --locked --quiet

# When the user's shell has no uv (the scripts use .tools/bin/uv), say how to run the README's
# `uv run ...` commands; on stderr, for the calling script to show where it will be read.
bootstrap_path_hint() {
  if [ -n "$_bootstrap_uv_hidden" ]; then
    echo "note: uv is not on your PATH (these scripts use .tools/bin/uv). For the README's \`uv run ...\` commands, first run:" >&2
    echo "  export PATH=\"$PWD/.tools/bin:\$PATH\"" >&2
  fi
}
