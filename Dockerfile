# Two stages: build the locked virtualenv with uv, then copy it into a slim runtime image.
# No `# syntax=` line: Docker's built-in BuildKit frontend handles RUN --mount, so the build
# needs no frontend image from a registry.

# Optional dependencies (pyproject.toml extras), space-separated; for MEDIA_BACKEND=pipecat:
#   docker build --build-arg EXTRAS="azure-monitor pipecat" -t acs-bridge:pipecat .
ARG EXTRAS="azure-monitor"

FROM python:3.12-slim AS build
ARG EXTRAS
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /srv
# Dependencies first (cached while only the code changes), from the lock file alone.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project $(for e in $EXTRAS; do printf -- '--extra %s ' "$e"; done)
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
# --reinstall-package: uv keys its cache of the project's own wheel on pyproject.toml alone, so
# without it a changed app/ could ship as the previously built wheel.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --reinstall-package acs-bridge \
      $(for e in $EXTRAS; do printf -- '--extra %s ' "$e"; done) \
 && rm -f /srv/.venv/.lock

FROM python:3.12-slim AS runtime
ARG EXTRAS
# The Azure Speech SDK (PIPECAT_STT/TTS=azure) ships an audio extension linked to ALSA's library.
RUN case " $EXTRAS " in *" pipecat "*) \
      apt-get update && { apt-get install -y --no-install-recommends libasound2t64 \
        || apt-get install -y --no-install-recommends libasound2; } \
      && rm -rf /var/lib/apt/lists/* ;; esac
RUN groupadd --system --gid 10001 bridge \
 && useradd --system --uid 10001 --gid bridge --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin bridge
WORKDIR /srv
# The installed code belongs to root and is read-only for the runtime user ...
COPY --from=build /srv/.venv /srv/.venv
# ... and the recordings volume is the only place it writes.
RUN mkdir -p /srv/recordings && chown bridge:bridge /srv/recordings && chmod 0750 /srv/recordings
VOLUME ["/srv/recordings"]
ENV PATH="/srv/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOST=0.0.0.0 \
    PORT=8000 \
    RECORDINGS_DIR=/srv/recordings
USER bridge:bridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
CMD ["acs-bridge", "serve"]
