"""The uvicorn server for a Settings object: what ``salon serve`` runs and the tests start."""

from __future__ import annotations

from typing import Any

import uvicorn
from uvicorn.protocols.websockets.websockets_sansio_impl import WebSocketsSansIOProtocol
from websockets.protocol import State

from salon.core.clock import Clock
from salon.core.settings import Settings
from salon.server.app import create_app
from salon.server.tls import ensure_self_signed


class SansIOProtocol(WebSocketsSansIOProtocol):
    """uvicorn's websockets-sansio protocol, made safe to shut down.

    uvicorn 0.54's ``shutdown()`` sends close 1012 unless *it* sent a close; when the client
    closed first, the websockets state is already CLOSING, ``send_close`` raises InvalidState
    and the server's graceful shutdown aborts before our lifespan cleanup. Only send the
    close frame on a connection that is still open.
    """

    def shutdown(self) -> None:
        if self.handshake_complete and not self.close_sent and self.conn.state is not State.OPEN:
            self.stop_keepalive()
            self.transport.close()
            return
        super().shutdown()


class ConfigError(ValueError):
    """Settings that cannot be served; the message says which."""


def tls_files(settings: Settings) -> tuple[str, str] | None:
    """(cert, key) to serve with, making a self-signed pair on first start; None for --http."""
    if settings.http:
        return None
    if (settings.cert is None) != (settings.key is None):
        raise ConfigError("give both --cert and --key, or neither")
    if settings.cert is not None and settings.key is not None:
        return str(settings.cert), str(settings.key)
    cert, key = ensure_self_signed(settings.data_dir)
    return str(cert), str(key)


def uvicorn_config(settings: Settings, clock: Clock | None = None) -> uvicorn.Config:
    tls = tls_files(settings)
    ssl: dict[str, Any] = {"ssl_certfile": tls[0], "ssl_keyfile": tls[1]} if tls else {}
    return uvicorn.Config(
        create_app(settings, clock),
        host=settings.host,
        port=settings.port,
        ws=SansIOProtocol,
        ws_max_size=settings.limits.max_frame_bytes,
        ws_per_message_deflate=False,  # costs 2-4x CPU and memory per connection; SDP is small
        ws_ping_interval=None,  # the protocol pings on silence itself
        proxy_headers=settings.http,
        forwarded_allow_ips=settings.forwarded_allow_ips,
        log_level=settings.log_level,
        server_header=False,
        **ssl,
    )
