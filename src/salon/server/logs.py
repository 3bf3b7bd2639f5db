"""Logging for ``salon serve`` (docs/OPERATIONS.md, "Logs"): plain text on a terminal, one
JSON object per line otherwise, with the ids of what a line is about.

Ids come from context variables, so a line logged anywhere while a connection handles a frame
or a request is answered carries them without being passed around: ``conn`` (set when a
WebSocket is accepted), ``member`` (once it is greeted), ``room`` (after each frame, the room
its member is in), ``request`` (an HTTP request's id: the client's ``X-Request-ID`` when it is
safe, else a new one, echoed in the response).

Nothing secret is logged: Salon's own lines carry ids, never message contents; libraries that
would log SQL parameters, WebSocket frames or request URLs below WARNING are held at WARNING
(uvicorn's error logger, which the websockets library logs frames to, at INFO); uvicorn's lines
lose their query strings (:func:`scrub_uvicorn`, called by ``salon.server.runner``).
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Final, Literal, TextIO, TypeGuard

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONN: ContextVar[str | None] = ContextVar("salon_conn", default=None)
"""The WebSocket connection a line is about (a random id per connection)."""
MEMBER: ContextVar[str | None] = ContextVar("salon_member", default=None)
"""The member id of that connection, once greeted."""
ROOM: ContextVar[str | None] = ContextVar("salon_room", default=None)
"""The room that member is in, as of the frame being handled."""
REQUEST: ContextVar[str | None] = ContextVar("salon_request", default=None)
"""The HTTP request (or WebSocket upgrade request) a line is about."""

IDS: Final = (("conn", CONN), ("member", MEMBER), ("room", ROOM), ("request", REQUEST))

REQUEST_ID_HEADER: Final = "X-Request-ID"
REQUEST_ID: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""A client's request id is kept only when it matches this; any other is replaced."""

TEXT_FORMAT: Final = "%(levelname)s %(name)s: %(message)s"

QUIET_LIBRARIES: Final = (
    "sqlalchemy",  # INFO and DEBUG: SQL with its parameters (chat text, hashes)
    "aiosqlite",
    "asyncpg",
    "websockets",  # DEBUG: every frame, chat and SDP included
    "httpx",  # INFO: every request's URL (a webhook's URL may hold a secret)
    "httpcore",
    "hpack",
    "multipart",
    "python_multipart",
    "alembic",  # INFO: each migration at every start
)
"""Loggers held at WARNING or above whatever the level: what they say below it would leak
secrets or flood the log."""

LogFormat = Literal["auto", "text", "json"]


def new_id() -> str:
    """A fresh id for a connection or request: 12 url-safe characters (72 random bits)."""
    return secrets.token_urlsafe(9)


class ContextIds(logging.Filter):
    """Copies the ids of the current context onto each record (``record.conn`` ...), None
    where unknown. On a handler: every record that handler writes gets them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for name, var in IDS:
            if not hasattr(record, name):
                setattr(record, name, var.get())
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``ts`` (RFC 3339, UTC, milliseconds),
    ``level``, ``logger``, ``message``, then ``conn``, ``member``, ``room``, ``request`` when
    known, and ``exc`` (the traceback, its newlines escaped) for an exception."""

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC)
        line: dict[str, object] = {
            "ts": when.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name, _ in IDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, default=str)


class TextFormatter(logging.Formatter):
    """``LEVEL logger: message`` as before, then ``[conn=… member=… room=… request=…]`` with
    the ids that are known."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        ids = [
            f"{name}={value}"
            for name, _ in IDS
            if (value := getattr(record, name, None)) is not None
        ]
        return f"{text} [{' '.join(ids)}]" if ids else text


def resolve_format(fmt: LogFormat, stream: TextIO) -> Literal["text", "json"]:
    """``auto``: text on a terminal, JSON otherwise (a service manager, a container)."""
    if fmt != "auto":
        return fmt
    isatty = getattr(stream, "isatty", None)
    return "text" if isatty is not None and isatty() else "json"


def configure_logging(level: str, fmt: LogFormat, stream: TextIO | None = None) -> None:
    """Send every log record (Salon's, uvicorn's error and access logs) to ``stream``
    (stderr) in ``fmt``, at ``level`` (``debug``, ``info``, …, case-insensitive). Replaces
    the root logger's handlers; :data:`QUIET_LIBRARIES` stay at WARNING or above.
    Raises ValueError for an unknown level."""
    stream = stream or sys.stderr
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextIds())
    kind = resolve_format(fmt, stream)
    handler.setFormatter(JsonFormatter() if kind == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(numeric)
    quiet_libraries(numeric)


def quiet_libraries(level: int) -> None:
    """Hold :data:`QUIET_LIBRARIES` at ``level`` or WARNING, whichever is higher."""
    for name in QUIET_LIBRARIES:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


def request_id(given: str | None) -> str:
    """The id of a request: the client's when it is 1-64 of ``[A-Za-z0-9._-]``, else new."""
    if given is not None and REQUEST_ID.fullmatch(given):
        return given
    return new_id()


class RequestIds:
    """ASGI middleware: each HTTP request (and WebSocket upgrade request) gets an id, in
    :data:`REQUEST` while it is handled, and echoed in the ``X-Request-ID`` response header
    of HTTP answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = None
        for key, value in scope["headers"]:
            if key == b"x-request-id":
                given = value.decode("latin-1")
                break
        rid = request_id(given)
        token = REQUEST.set(rid)
        try:
            if scope["type"] == "websocket":
                await self.app(scope, receive, send)
                return

            async def send_with_id(message: Message) -> None:
                if message["type"] == "http.response.start":
                    MutableHeaders(scope=message)[REQUEST_ID_HEADER] = rid
                await send(message)

            await self.app(scope, receive, send_with_id)
        finally:
            REQUEST.reset(token)


class UvicornScrub(logging.Filter):
    """On uvicorn's loggers: drops what the websockets library logs below INFO through them
    (every frame, chat and SDP included, and the handshake's headers, cookies included), and
    cuts the query string off every path (access lines, WebSocket upgrades): a query may carry
    a token, and the log needs none of it. Any text argument is cut at its first ``?``: a
    request's target need not begin with ``/`` (``GET *?token=…``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno < logging.INFO and _WEBSOCKETS_PACKAGE in record.pathname:
            return False
        args = record.args
        if isinstance(args, tuple) and any(_has_query(a) for a in args):
            record.args = tuple(a.split("?", 1)[0] if _has_query(a) else a for a in args)
        return True


_WEBSOCKETS_PACKAGE: Final = f"{os.sep}websockets{os.sep}"


def _has_query(arg: object) -> TypeGuard[str]:
    """A text argument with a ``?``: uvicorn percent-encodes the path it logs, so its first
    ``?`` begins the query, whatever the path begins with (``/``, ``*``, ``%2A``, nothing)."""
    return isinstance(arg, str) and "?" in arg


def scrub_uvicorn() -> None:
    """Install :class:`UvicornScrub` on uvicorn's error and access loggers (once), and hold
    ``uvicorn.error`` at INFO or above: uvicorn hands it to the websockets library, which
    would log every frame at DEBUG (and spend the time formatting them). Call it after
    uvicorn's Config has set its loggers' levels."""
    for name in ("uvicorn.access", "uvicorn.error"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, UvicornScrub) for f in logger.filters):
            logger.addFilter(UvicornScrub())
    errors = logging.getLogger("uvicorn.error")
    errors.setLevel(max(errors.getEffectiveLevel(), logging.INFO))
