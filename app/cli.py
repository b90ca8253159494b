"""The `acs-bridge` command."""

from __future__ import annotations

import argparse
import errno
import ipaddress
import logging
import signal
import socket
import sys
from importlib.metadata import PackageNotFoundError, version

import uvicorn
import uvloop
from fastapi import FastAPI

from app.main import production_app
from app.server import AnnouncedServer, bind_socket, uvicorn_config
from app.settings import (
    DEFAULT_LOOPBACK,
    EVERY_INTERFACE,
    ConfigurationError,
    Settings,
    load_settings,
)

log = logging.getLogger(__name__)

DESCRIPTION = """\
acs-bridge answers Azure Communication Services (ACS) calls and streams their audio to a
voice-agent backend (echo, recorder, your WebSocket service, OpenAI / Azure OpenAI Realtime,
Azure AI Voice Live, a Pipecat bot). With no ACS settings it runs on its embedded ACS emulator,
for test calls.

Settings come from the environment and from a .env file in the current directory (every one is
documented in .env.example); --host and --port override HOST and PORT."""
DEFAULT_PORT = Settings.model_fields["port"].default


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `acs-bridge` console script."""
    args = _parser().parse_args(argv)
    if args.command == "serve":
        return _serve(args.host, args.port)
    if args.command == "doctor":
        # Imported here: the checks' clients are of no use to `serve`.
        from app.doctor.command import run_command

        return run_command(as_json=args.json, start=args.start)
    return _demo(args.backend, args.seconds)


def listen_host(settings: Settings) -> str:
    """The address `serve` listens on (`Settings.listen_host`)."""
    return settings.listen_host


def package_version() -> str:
    """The installed acs-bridge's version."""
    try:
        return version("acs-bridge")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default, except where the help says what an unset one means."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default is None:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="acs-bridge", description=DESCRIPTION, formatter_class=_HelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {package_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = sub.add_parser(
        "serve",
        help="run the service (uvicorn, one worker)",
        description=DESCRIPTION,
        formatter_class=_HelpFormatter,
    )
    serve.add_argument(
        "--host",
        default=None,
        help=f"address to listen on (default: HOST; unset, {DEFAULT_LOOPBACK} with the embedded "
        f"emulator and no CONTROL_API_KEY, else {EVERY_INTERFACE})",
    )
    serve.add_argument(
        "--port",
        type=_port,
        default=None,
        help=f"port to listen on, 0 for a free one (default: PORT, else {DEFAULT_PORT})",
    )
    demo = sub.add_parser(
        "demo",
        help="one simulated call end to end, no Azure account needed",
        description="One simulated call end to end on the embedded ACS emulator, on free "
        "local ports; prints the call's events, frame counts and round trip.",
        formatter_class=_HelpFormatter,
    )
    demo.add_argument(
        "--backend",
        choices=["echo", "recorder"],
        default=None,
        help="media backend (default: MEDIA_BACKEND if echo or recorder, else echo)",
    )
    demo.add_argument(
        "--seconds",
        type=float,
        default=None,
        help="stream only this much audio (default: the whole recording)",
    )
    doctor = sub.add_parser(
        "doctor",
        help="check this deployment from the outside, before the first call",
        description="Check the service at PUBLIC_BASE_URL as ACS and Event Grid reach it, with "
        "the service's own settings: one PASS, WARN, FAIL or SKIP line per check, and the fix "
        "for each FAIL. Exit 0 when nothing failed, 1 otherwise.",
        formatter_class=_HelpFormatter,
    )
    doctor.add_argument("--json", action="store_true", help="one JSON document instead of lines")
    doctor.add_argument(
        "--start", action="store_true", help="serve the app while checking (not one running)"
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port {port} is not from 0 to 65535")
    return port


def _serve(host: str | None, port: int | None) -> int:
    try:
        settings = load_settings()
        host = host or listen_host(settings)
        port = settings.port if port is None else port
    except ConfigurationError as exc:
        return _cannot_start(str(exc))
    # Listen before anything starts (the emulator, a backend's connections): a port in use is
    # one line and exit 2, not a started app that then fails to bind.
    try:
        sock = bind_socket(host, port)
        sock.listen(2048)
    except (OSError, OverflowError) as exc:
        return _cannot_start(_bind_problem(host, port, exc))
    try:
        # The embedded emulator (no ACS settings) must know the port it reaches the service at.
        bound_port = sock.getsockname()[1]
        settings = settings.model_copy(update={"host": host, "port": bound_port})
        app = production_app(settings)
    except ConfigurationError as exc:
        sock.close()
        return _cannot_start(str(exc))
    if not _is_loopback(sock) and settings.control_api_key is None:
        log.warning(
            "listening on %s:%d, reachable from other machines, with no CONTROL_API_KEY: "
            "whoever reaches this port can use the console and the control API; set "
            "CONTROL_API_KEY, or HOST=%s to listen on this machine only",
            host,
            bound_port,
            DEFAULT_LOOPBACK,
        )
    # uvicorn re-raises the stop signal once it has shut down; a SIGTERM stop (docker stop, a
    # deploy) is a clean exit, so the handler it restores ignores that.
    signal.signal(signal.SIGTERM, lambda _signum, _frame: None)
    try:
        AnnouncedServer(_config(app, settings, host, bound_port)).run(sockets=[sock])
    finally:
        sock.close()
    return 0


def _cannot_start(why: str) -> int:
    print(f"acs-bridge: cannot start: {why}", file=sys.stderr)
    return 2


def _bind_problem(host: str, port: int, exc: Exception) -> str:
    """One line on why `host:port` cannot be listened on, and what to change."""
    where = f"{host}:{port}"
    if isinstance(exc, socket.gaierror):
        return f"HOST {host!r} is not an address or a known host name"
    code = exc.errno if isinstance(exc, OSError) else None
    if code == errno.EADDRINUSE:
        return (
            f"port {port} is already in use ({where}): stop what listens there, or choose "
            "another port with PORT=<port> or --port <port>"
        )
    if code == errno.EACCES:
        return f"not allowed to listen on {where} (ports below 1024 need privileges)"
    if code == errno.EADDRNOTAVAIL:
        return f"HOST {host!r} is not an address of this machine"
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return f"cannot listen on {where}: {reason}"


def _is_loopback(sock: socket.socket) -> bool:
    address = sock.getsockname()[0]
    return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback


def _demo(backend: str | None, seconds: float | None) -> int:
    try:
        settings = load_settings()
        chosen = backend or settings.media_backend
        # The demo plays a recording through a backend that needs no outside service.
        chosen = chosen if chosen in ("echo", "recorder") else "echo"
        settings = Settings.model_validate({**settings.model_dump(), "media_backend": chosen})
    except ConfigurationError as exc:
        return _cannot_start(str(exc))
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
