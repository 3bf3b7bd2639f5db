"""The log formats, the ids they carry, request ids and what uvicorn's lines lose."""

from __future__ import annotations

import io
import json
import logging
import sys
from collections.abc import Iterator
from datetime import datetime

import pytest

from salon.server.logs import (
    CONN,
    MEMBER,
    QUIET_LIBRARIES,
    REQUEST,
    ROOM,
    ContextIds,
    JsonFormatter,
    TextFormatter,
    UvicornScrub,
    configure_logging,
    request_id,
    resolve_format,
)


def record(message: str = "hello %s", *args: object, **extra: object) -> logging.LogRecord:
    made = logging.LogRecord("salon.test", logging.INFO, __file__, 1, message, args, None)
    made.__dict__.update(extra)
    return made


@pytest.fixture
def ids() -> Iterator[None]:
    tokens = [CONN.set("c1"), MEMBER.set("m1"), ROOM.set("r1"), REQUEST.set("q1")]
    yield
    for var, token in zip((CONN, MEMBER, ROOM, REQUEST), tokens, strict=True):
        var.reset(token)


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in QUIET_LIBRARIES}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, old in levels.items():
        logging.getLogger(name).setLevel(old)


def test_json_line_has_the_fields_and_only_known_ids() -> None:
    rec = record("hello %s", "world")
    ContextIds().filter(rec)  # no ids in this context
    line = json.loads(JsonFormatter().format(rec))
    assert set(line) == {"ts", "level", "logger", "message"}
    assert line["level"] == "info" and line["logger"] == "salon.test"
    assert line["message"] == "hello world"
    assert line["ts"].endswith("Z")
    assert datetime.fromisoformat(line["ts"]).utcoffset() is not None  # RFC 3339, UTC


@pytest.mark.usefixtures("ids")
def test_ids_come_from_the_context() -> None:
    rec = record()
    ContextIds().filter(rec)
    line = json.loads(JsonFormatter().format(rec))
    assert (line["conn"], line["member"], line["room"], line["request"]) == ("c1", "m1", "r1", "q1")
    text = TextFormatter().format(rec)
    assert text == "INFO salon.test: hello %s [conn=c1 member=m1 room=r1 request=q1]"


def test_text_without_ids_is_as_before() -> None:
    rec = record("plain")
    ContextIds().filter(rec)
    assert TextFormatter().format(rec) == "INFO salon.test: plain"


def test_an_exception_is_one_field_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        rec = logging.LogRecord(
            "salon.test", logging.ERROR, __file__, 1, "failed", (), sys.exc_info()
        )
    out = JsonFormatter().format(rec)
    assert "\n" not in out
    line = json.loads(out)
    assert line["exc"].startswith("Traceback") and "ValueError: boom" in line["exc"]


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("abc-123_X.y", True),
        ("a" * 64, True),
        ("a" * 65, False),
        ("", False),
        ("has space", False),
        ("new\nline", False),
        ("ü", False),
        ("a/b", False),
        (None, False),
    ],
)
def test_a_client_request_id_is_kept_only_when_safe(given: str | None, kept: bool) -> None:
    rid = request_id(given)
    assert (rid == given) is kept
    assert 1 <= len(rid) <= 64


def test_new_request_ids_differ() -> None:
    assert request_id(None) != request_id(None)


def test_uvicorn_lines_lose_their_query_strings() -> None:
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "h11_impl.py",
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", "/api/v1/x?token=secret", "1.1", 200),
        None,
    )
    assert UvicornScrub().filter(access)
    assert access.getMessage() == '127.0.0.1:5 - "GET /api/v1/x HTTP/1.1" 200'
    upgrade = record('%s - "WebSocket %s" [accepted]', "127.0.0.1:5", "/ws?invite=secret")
    UvicornScrub().filter(upgrade)
    assert "secret" not in upgrade.getMessage()


@pytest.mark.parametrize(
    ("target", "logged"),
    [
        ("%2A?leak=SECRET", "%2A"),  # GET *?leak=… : uvicorn logs the path percent-encoded
        ("?leak=SECRET", ""),  # an empty path
        ("http%3A//h/x?leak=SECRET", "http%3A//h/x"),
        ("x?a=1?leak=SECRET", "x"),  # the first ? begins the query
    ],
)
def test_the_query_goes_whatever_the_path_begins_with(target: str, logged: str) -> None:
    access = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "h11_impl.py",
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "GET", target, "1.1", 404),
        None,
    )
    assert UvicornScrub().filter(access)
    assert access.getMessage() == f'127.0.0.1:5 - "GET {logged} HTTP/1.1" 404'
    upgrade = record('%s - "WebSocket %s" 403', "127.0.0.1:5", target)
    UvicornScrub().filter(upgrade)
    assert "SECRET" not in upgrade.getMessage()


def test_websockets_frames_never_pass_through_uvicorn() -> None:
    frame = logging.LogRecord(
        "uvicorn.error",
        logging.DEBUG,
        "/venv/lib/site-packages/websockets/protocol.py",
        611,
        "< %s",
        ('TEXT \'{"type":"chat","text":"secret"}\'',),
        None,
    )
    assert not UvicornScrub().filter(frame)


def test_auto_is_text_on_a_terminal_json_otherwise() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert resolve_format("auto", Tty()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Tty()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


@pytest.mark.usefixtures("restore_logging")
def test_configure_logging_writes_json_lines_and_holds_chatty_libraries() -> None:
    out = io.StringIO()
    configure_logging("debug", "json", out)
    logging.getLogger("salon.test").debug("one %d", 1)
    logging.getLogger("sqlalchemy.engine.Engine").info("INSERT ... ('secret chat',)")
    logging.getLogger("websockets.server").debug("< TEXT secret")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"] for line in lines] == ["one 1"]
    for name in QUIET_LIBRARIES:
        assert logging.getLogger(name).getEffectiveLevel() >= logging.WARNING
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging("chatty", "json", out)
