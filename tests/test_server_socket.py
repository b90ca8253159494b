"""The service's listening socket hands out connections with Nagle's algorithm off, whatever
event loop serves them (a small response never waits for the client's delayed ACK)."""

from __future__ import annotations

import socket

from app.server import bind_socket


def test_accepted_connections_send_small_writes_at_once() -> None:
    listener = bind_socket()
    with listener:
        listener.listen()
        with socket.create_connection(listener.getsockname()[:2]):
            accepted, _ = listener.accept()
            with accepted:
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
