# syntax=docker/dockerfile:1.7
# Two stages: build the locked virtualenv with uv, then copy it into a slim runtime image.

FROM python:3.12-slim AS build
RUN pip install --no-cache-dir "uv==0.13.9"
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PYTHON_DOWNLOADS=never
WORKDIR /srv
# Dependencies first (cached while only the code changes), from the lock file alone.
RUN --mount=type=cache,target=/root/.cache/uv \
    --mount=type=bind,source=uv.lock,target=uv.lock \
    --mount=type=bind,source=pyproject.toml,target=pyproject.toml \
    uv sync --locked --no-dev --no-install-project --extra azure-monitor
COPY pyproject.toml uv.lock README.md ./
COPY app ./app
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --locked --no-dev --no-editable --extra azure-monitor

FROM python:3.12-slim AS runtime
RUN groupadd --system --gid 10001 bridge \
 && useradd --system --uid 10001 --gid bridge --home-dir /srv --shell /usr/sbin/nologin bridge
WORKDIR /srv
COPY --from=build --chown=bridge:bridge /srv/.venv /srv/.venv
RUN mkdir -p /srv/recordings && chown bridge:bridge /srv/recordings
ENV PATH="/srv/.venv/bin:$PATH" \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PORT=8000 \
    RECORDINGS_DIR=/srv/recordings
USER bridge
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8000\")}/healthz', timeout=2)"]
CMD ["acs-bridge", "serve"]
