"""Which web pages may talk to this server: the ``Origin`` rule for ``/ws`` and for REST.

The server's own origin is the request's scheme and ``Host``. The scheme is what uvicorn put
in the ASGI scope, which honours ``X-Forwarded-Proto`` only from the proxies it trusts
(``forwarded_allow_ips``, with ``--http``); ``Host`` reaches us as the browser sent it.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection

from salon.core.origin import origin_allowed, own_origin


class OriginPolicy:
    """The server's own origin plus the configured ``allowed_origins`` (normalized)."""

    def __init__(self, allowed: list[str]) -> None:
        self.allowed = frozenset(allowed)

    def check(self, conn: HTTPConnection) -> bool | None:
        """True for one allowed ``Origin`` header, False for a foreign, ``null``, malformed or
        repeated one, None when the request carries none."""
        origins = conn.headers.getlist("origin")
        if not origins:
            return None
        if len(origins) > 1:
            return False
        own = own_origin(conn.scope.get("scheme", "http"), conn.headers.get("host"))
        return origin_allowed(origins[0], own, self.allowed)

    def permits_websocket(self, conn: HTTPConnection) -> bool:
        """The ``/ws`` handshake rule (cross-site WebSocket hijacking). A handshake without
        ``Origin`` is allowed: browsers always send one on a WebSocket handshake (RFC 6455
        §4.1, Fetch), so a missing one means a non-browser client (a bot, a test), which holds
        no victim's cookies to abuse."""
        return self.check(conn) is not False
