# Sourced by scripts/test and .ci/run: find what the test suite needs outside Python.
# Each function prints nothing on success except its result; on failure it returns non-zero.

# Is `$1` a browser that starts? (Ubuntu's `chromium-browser` may be a stub asking for a snap.)
_browser_runs() {
  [ -f "$1" ] && [ -x "$1" ] && "$1" --version >/dev/null 2>&1
}

# Print the Chromium the browser tests drive, in this order: $CHROMIUM_PATH; chromium,
# chromium-browser, google-chrome, google-chrome-stable on PATH; a Playwright-installed one
# (~/.cache/ms-playwright, then playwright's own idea of its executable if the env is synced).
# Returns 1 if none is found, 2 if $CHROMIUM_PATH is set but is not a browser that runs.
find_chromium() {
  local name candidate
  if [ -n "${CHROMIUM_PATH:-}" ]; then
    _browser_runs "$CHROMIUM_PATH" || return 2
    printf '%s\n' "$CHROMIUM_PATH"
    return 0
  fi
  for name in chromium chromium-browser google-chrome google-chrome-stable; do
    candidate=$(command -v "$name" 2>/dev/null) || continue
    if _browser_runs "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  for candidate in "${PLAYWRIGHT_BROWSERS_PATH:-$HOME/.cache/ms-playwright}"/chromium-*/chrome-linux*/chrome; do
    if _browser_runs "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  done
  if command -v uv >/dev/null 2>&1 && [ -d .venv ]; then
    candidate=$(uv run --locked --quiet python -c \
      'from playwright.sync_api import sync_playwright
with sync_playwright() as p: print(p.chromium.executable_path)' 2>/dev/null) || candidate=""
    if [ -n "$candidate" ] && _browser_runs "$candidate"; then
      printf '%s\n' "$candidate"
      return 0
    fi
  fi
  return 1
}

# Export CHROMIUM_PATH for pytest, or stop with one line saying what is missing and how to fix it.
require_chromium() {
  local found rc=0
  found=$(find_chromium) || rc=$?
  case $rc in
    0) export CHROMIUM_PATH="$found" ;;
    2)
      echo "$1: CHROMIUM_PATH=$CHROMIUM_PATH is not a browser that runs; point it at a Chromium or Chrome executable, or unset it to search PATH" >&2
      exit 1
      ;;
    *)
      echo "$1: the browser tests need Chromium and none was found (CHROMIUM_PATH, chromium, chromium-browser, google-chrome on PATH, Playwright's); install it: sudo apt-get install chromium (Debian/Ubuntu), or: uv run playwright install chromium" >&2
      exit 1
      ;;
  esac
}

# Stop with one line unless `redis-server` is installed (the suite starts its own private ones).
require_redis_server() {
  if ! command -v redis-server >/dev/null 2>&1; then
    echo "$1: the Redis tests need redis-server (the suite starts its own) and it is not installed; install it: sudo apt-get install redis-server (Debian/Ubuntu), or: brew install redis (macOS)" >&2
    exit 1
  fi
}
