"""Security headers on every HTTP answer, refused WebSocket handshakes included; HEAD as GET.

The headers: a Content-Security-Policy with no ``unsafe-inline`` or ``unsafe-eval`` and with
``frame-ancestors 'none'`` (CSP Level 3), ``X-Content-Type-Options: nosniff`` (Fetch),
``Referrer-Policy: no-referrer``, a ``Permissions-Policy`` that gives camera, microphone and
screen capture to Salon's own origin only, ``X-Frame-Options: DENY`` (RFC 7034, for browsers
without ``frame-ancestors``) and, when Salon itself serves TLS, HSTS (RFC 6797).
"""

from __future__ import annotations

from typing import Final

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP: Final = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob:",
        "media-src 'self' blob:",
        "connect-src 'self'",
        "font-src 'self' data:",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)

PERMISSIONS: Final = "camera=(self), microphone=(self), display-capture=(self), geolocation=()"

HSTS_SECONDS: Final = 31_536_000
"""One year: what browsers' HSTS preload lists ask for (RFC 6797 6.1.1 ``max-age``)."""

DENIAL: Final = "websocket.http.response"
"""The ASGI extension that lets an application answer a WebSocket handshake with HTTP."""


class SecurityHeaders:
    """The outermost middleware: the headers on every ``http.response.start`` and on every
    HTTP answer to a WebSocket handshake (``websocket.http.response.start``).

    A handshake the application refuses with a bare ``websocket.close`` before accepting
    (the foreign-``Origin`` 403) would get the ASGI server's own 403 without them; where the
    server supports the ``websocket.http.response`` extension it is answered as that same
    403 here, with the headers."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    def _add(self, message: Message) -> None:
        headers = MutableHeaders(scope=message)
        headers.setdefault("Content-Security-Policy", CSP)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("Referrer-Policy", "no-referrer")
        headers.setdefault("Permissions-Policy", PERMISSIONS)
        headers.setdefault("X-Frame-Options", "DENY")
        if self.hsts:
            headers.setdefault("Strict-Transport-Security", f"max-age={HSTS_SECONDS}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "websocket":
            await self.app(scope, receive, self._websocket_send(scope, send))
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                self._add(message)
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's outermost ServerErrorMiddleware would answer 500 itself, around this
            # middleware and so without the headers. Answer it here; it still logs the error
            # and, seeing the response started, sends nothing more.
            if not started:
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                    }
                )
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise

    def _websocket_send(self, scope: Scope, send: Send) -> Send:
        can_deny = DENIAL in scope.get("extensions", {})
        accepted = False

        async def send_with_headers(message: Message) -> None:
            nonlocal accepted
            kind = message["type"]
            if kind == "websocket.accept":
                accepted = True
            elif kind == "websocket.http.response.start":
                accepted = True  # answered over HTTP: no close to turn into one
                self._add(message)
            elif kind == "websocket.close" and not accepted and can_deny:
                # ASGI: a close before the accept is answered HTTP 403.
                accepted = True
                start: Message = {
                    "type": "websocket.http.response.start",
                    "status": 403,
                    "headers": [(b"content-type", b"text/plain; charset=utf-8")],
                }
                self._add(start)
                await send(start)
                await send({"type": "websocket.http.response.body", "body": b"forbidden"})
                return
            await send(message)

        return send_with_headers


class HeadAsGet:
    """A HEAD request is routed as a GET and answered without the content (RFC 9110 9.3.2:
    the same header fields as GET, Content-Length included). FastAPI's routes list GET only,
    so HEAD would otherwise be 405 on the API. Innermost, so logs and metrics see HEAD."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_content(message: Message) -> None:
            if message["type"] == "http.response.body" and message.get("body"):
                message = {**message, "body": b""}
            await send(message)

        # A copy: the ASGI server reads the method from its own scope (HEAD: no content
        # expected). Routing leaves the route that answered in the copy; the metrics outside
        # read it from the original.
        inner = {**scope, "method": "GET"}
        try:
            await self.app(inner, receive, send_without_content)
        finally:
            if "route" in inner:
                scope["route"] = inner["route"]
