"""Meeting links, server addresses and TLS contexts for the SDK."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from salon.client import MeetingLink, parse_link, ssl_context
from salon.client.client import websocket_url


@pytest.mark.parametrize(
    ("link", "parsed"),
    [
        ("https://h:8443/r/standup", MeetingLink("https://h:8443", "standup", None)),
        ("https://h/r/Team_1-a/", MeetingLink("https://h", "Team_1-a", None)),
        (
            "http://10.0.0.2:80/r/x#invite=abc.def",
            MeetingLink("http://10.0.0.2:80", "x", "abc.def"),
        ),
        ("https://[::1]:8443/r/x", MeetingLink("https://[::1]:8443", "x", None)),
        ("  https://h:1/  ", MeetingLink("https://h:1", None, None)),
        ("https://h:1", MeetingLink("https://h:1", None, None)),
    ],
)
def test_links_parse(link: str, parsed: MeetingLink) -> None:
    assert parse_link(link) == parsed


@pytest.mark.parametrize(
    ("link", "says"),
    [
        ("ftp://h/r/x", "not a meeting link"),
        ("standup", "not a meeting link"),
        ("https:///r/x", "no host"),
        ("https://h:99999/r/x", "port"),
        ("https://h/rooms/x", "/r/ROOM"),
        ("https://h/r/", "/r/ROOM"),
        ("https://h/r/a b", "not a room id"),
        ("https://h/r/" + "x" * 65, "not a room id"),
    ],
)
def test_bad_links_say_what_is_wrong(link: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        parse_link(link)


@pytest.mark.parametrize(
    ("server", "url"),
    [
        ("https://h:8443", "wss://h:8443/ws"),
        ("http://h:8080/", "ws://h:8080/ws"),
        ("wss://h/ws", "wss://h/ws"),
        ("ws://h", "ws://h/ws"),
    ],
)
def test_server_addresses_become_websocket_urls(server: str, url: str) -> None:
    assert websocket_url(server) == url


def test_a_server_address_needs_http_or_ws() -> None:
    with pytest.raises(ValueError, match="https://host:port"):
        websocket_url("h:8443")


def test_ssl_contexts(tmp_path: Path) -> None:
    assert ssl_context() is None  # the system's trust store
    insecure = ssl_context(insecure=True)
    assert insecure is not None
    assert (insecure.verify_mode, insecure.check_hostname) == (ssl.CERT_NONE, False)
    with pytest.raises(ValueError, match="exclude"):
        ssl_context(insecure=True, cafile="ca.pem")
    with pytest.raises(OSError):
        ssl_context(cafile=str(tmp_path / "missing.pem"))
