"""The `acs-bridge` command."""

from __future__ import annotations

import argparse
import sys

import uvicorn
import uvloop
from fastapi import FastAPI

from app.demo import DemoFailed, run_demo
from app.embedded_acs import embedded_acs
from app.main import create_app
from app.observability.logging import configure_logging
from app.observability.telemetry import configure_telemetry
from app.server import uvicorn_config
from app.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `acs-bridge` console script."""
    parser = argparse.ArgumentParser(prog="acs-bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (uvicorn, one worker)")
    serve.add_argument("--host", default=None, help="bind address (default: HOST setting)")
    serve.add_argument("--port", type=int, default=None, help="port (default: PORT setting)")
    demo = sub.add_parser("demo", help="one simulated call end to end, no Azure account needed")
    demo.add_argument(
        "--backend",
        choices=["echo", "recorder"],
        default=None,
        help="media backend (default: echo)",
    )
    demo.add_argument("--seconds", type=float, default=None, help="stream only this much audio")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "demo":
        return _demo(args.backend, args.seconds)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(host: str | None, port: int | None) -> int:
    settings = Settings()
    configure_logging(settings)
    host = host or settings.host
    port = port if port is not None else settings.port
    if settings.acs_configured:
        app = create_app(settings)
        configure_telemetry(settings, app)
        uvicorn.Server(_config(app, settings, host, port)).run()
    else:
        uvloop.run(_serve_with_emulator(settings, host, port))
    return 0


async def _serve_with_emulator(settings: Settings, host: str, port: int) -> None:
    """No ACS configured: the embedded emulator is this service's ACS (test calls only)."""
    local = f"http://127.0.0.1:{port}"
    async with embedded_acs(settings, public_base_url=local) as acs:
        print(
            f"No ACS configured: using the embedded ACS emulator at {acs.emulator.endpoint}.\n"
            f"Open {local}/ and place a test call, or POST {local}/api/emulator/calls.",
            file=sys.stderr,
        )
        app = create_app(acs.settings, emulator=acs.emulator)
        configure_telemetry(acs.settings, app)
        await uvicorn.Server(_config(app, acs.settings, host, port)).serve()


def _demo(backend: str | None, seconds: float | None) -> int:
    overrides = {"media_backend": backend} if backend else {}
    settings = Settings.model_validate({**Settings().model_dump(), **overrides})
    if settings.media_backend not in ("echo", "recorder"):
        settings = Settings.model_validate({**settings.model_dump(), "media_backend": "echo"})
    try:
        uvloop.run(run_demo(settings, seconds=seconds))
    except DemoFailed as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr)
        return 1
    return 0


def _config(app: FastAPI, settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn_config(
        app,
        host,
        port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ws_max_size=settings.media_max_message_bytes,
        ws_compression=settings.media_ws_compression,
        # configure_logging owns the handlers (format, call ids, redaction).
        log_config=False,
    )


if __name__ == "__main__":
    sys.exit(main())
