"""Start the real Salon server (the same uvicorn config as ``salon serve``) on a free port."""

from __future__ import annotations

import contextlib
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn

from salon.core.settings import LimitSettings, Settings
from salon.server.runner import uvicorn_config


@dataclass
class RunningServer:
    port: int
    settings: Settings
    server: uvicorn.Server
    ssl_context: ssl.SSLContext | None

    @property
    def base_url(self) -> str:
        scheme = "http" if self.settings.http else "https"
        return f"{scheme}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return self.base_url.replace("http", "ws", 1) + "/ws"


def client_ssl_context(data_dir: Path) -> ssl.SSLContext:
    """Trust exactly the server's self-signed certificate: the tests verify TLS for real."""
    return ssl.create_default_context(cafile=str(data_dir / "tls" / "cert.pem"))


STOP_SECONDS = 10.0
"""How long a server may take to stop (every stop in the suite took under 0.25 s on
2026-12-01; a slower one is a fault of the server or of the test, not a wait to hide)."""


@contextlib.contextmanager
def running_server(
    data_dir: Path, *, http: bool = False, options: dict[str, Any] | None = None, **limits: Any
) -> Iterator[RunningServer]:
    """``options`` are further :class:`Settings` fields, e.g. ``{"allowed_origins": [...]}``."""
    settings = Settings(
        host="127.0.0.1",
        data_dir=data_dir,
        http=http,
        log_level="warning",
        limits=LimitSettings(**limits),
        **(options or {}),
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn_config(settings))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the Salon server did not start")
        time.sleep(0.02)
    try:
        yield RunningServer(port, settings, server, None if http else client_ssl_context(data_dir))
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_SECONDS)
        sock.close()
        if thread.is_alive():  # it would go on in the background, holding its port and tasks
            raise AssertionError(f"the Salon server did not stop within {STOP_SECONDS} s")


def wait_bus_healthy(*servers: RunningServer, timeout: float = 10.0) -> None:
    """Wait until each server's bus is healthy. A server starts even when Redis does not
    answer in time (degraded, connecting again in the background): on a loaded machine
    its first try may time out, and what a test does before the retry gets through is
    refused. No event is exposed across the server's thread: polled every 20 ms."""
    deadline = time.monotonic() + timeout
    for server in servers:
        while not server.server.config.app.state.salon.bus.healthy:
            if time.monotonic() > deadline:
                raise AssertionError(f"the bus of {server.base_url} stayed degraded")
            time.sleep(0.02)
