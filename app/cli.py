"""The `acs-bridge` command."""

from __future__ import annotations

import argparse
import signal
import sys

import uvicorn
import uvloop
from fastapi import FastAPI

from app.main import production_app
from app.server import uvicorn_config
from app.settings import ConfigurationError, Settings, load_settings


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
    doctor = sub.add_parser("doctor", help="check this deployment from the outside, before a call")
    doctor.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    doctor.add_argument("--start", action="store_true", help="serve the app while checking")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "demo":
        return _demo(args.backend, args.seconds)
    if args.command == "doctor":
        from app.doctor.command import run_command

        return run_command(as_json=args.json, start=args.start)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(host: str | None, port: int | None) -> int:
    try:
        settings = load_settings()
        # The embedded emulator (no ACS settings) must know the port it reaches the service at.
        overrides = {"host": host or settings.host, "port": settings.port if port is None else port}
        settings = settings.model_copy(update=overrides)
        app = production_app(settings)
    except ConfigurationError as exc:
        print(f"acs-bridge: cannot start: {exc}", file=sys.stderr)
        return 2
    # uvicorn re-raises the stop signal once it has shut down; a SIGTERM stop (docker stop, a
    # deploy) is a clean exit, so the handler it restores ignores that.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    uvicorn.Server(_config(app, settings, settings.host, settings.port)).run()
    return 0


def _demo(backend: str | None, seconds: float | None) -> int:
    try:
        settings = load_settings()
        chosen = backend or settings.media_backend
        # The demo plays a recording through a backend that needs no outside service.
        chosen = chosen if chosen in ("echo", "recorder") else "echo"
        settings = Settings.model_validate({**settings.model_dump(), "media_backend": chosen})
    except ConfigurationError as exc:
        print(f"acs-bridge: cannot start: {exc}", file=sys.stderr)
        return 2
    # The demo brings the emulator (aiohttp, numpy, soxr): not imported by `serve`.
    from app.demo import DemoFailed, run_demo

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
