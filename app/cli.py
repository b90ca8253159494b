"""The `acs-bridge` command."""

from __future__ import annotations

import argparse
import sys

import uvicorn

from app.main import create_app
from app.server import uvicorn_config
from app.settings import Settings


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `acs-bridge` console script."""
    parser = argparse.ArgumentParser(prog="acs-bridge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the service (uvicorn, one worker)")
    serve.add_argument("--host", default=None, help="bind address (default: HOST setting)")
    serve.add_argument("--port", type=int, default=None, help="port (default: PORT setting)")
    args = parser.parse_args(argv)

    if args.command == "serve":
        return _serve(args.host, args.port)
    parser.error(f"unknown command {args.command}")
    return 2


def _serve(host: str | None, port: int | None) -> int:
    settings = Settings()
    app = create_app(settings)
    config = uvicorn_config(
        app,
        host or settings.host,
        port if port is not None else settings.port,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        ws_max_size=settings.media_max_message_bytes,
    )
    uvicorn.Server(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
