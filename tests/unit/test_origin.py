"""Origins (RFC 6454) as the server compares them, without a network."""

from __future__ import annotations

import pytest

from salon.core.origin import normalize_origin, origin_allowed, own_origin


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://meet.example.org", "https://meet.example.org"),
        ("HTTPS://Meet.Example.ORG", "https://meet.example.org"),
        ("https://meet.example.org:443", "https://meet.example.org"),
        ("http://meet.example.org:80/", "http://meet.example.org"),
        ("https://meet.example.org:8443", "https://meet.example.org:8443"),
        ("https://[::1]:8443", "https://[::1]:8443"),
        ("null", None),
        ("", None),
        ("meet.example.org", None),
        ("ftp://meet.example.org", None),
        ("https://meet.example.org/room", None),
        ("https://meet.example.org?x=1", None),
        ("https://user@meet.example.org", None),
        ("https://meet.example.org:99999", None),
        ("https://meet.example.org:port", None),
    ],
)
def test_normalize_origin(value: str, expected: str | None) -> None:
    assert normalize_origin(value) == expected


def test_own_origin_follows_the_scheme_and_host() -> None:
    assert own_origin("wss", "meet.example.org:443") == "https://meet.example.org"
    assert own_origin("ws", "127.0.0.1:8080") == "http://127.0.0.1:8080"
    assert own_origin("https", "Meet.example.org") == "https://meet.example.org"
    assert own_origin("wss", None) is None
    assert own_origin("wss", "evil.example/path") is None
    assert own_origin("wss", "evil.example@meet.example.org") is None


def test_origin_allowed() -> None:
    own = "https://meet.example.org"
    allowed = {"https://other.example.org"}
    assert origin_allowed("https://meet.example.org", own, allowed)
    assert origin_allowed("https://other.example.org:443", own, allowed)
    assert not origin_allowed("https://evil.example", own, allowed)
    assert not origin_allowed("null", own, allowed)
    assert not origin_allowed("http://meet.example.org", own, allowed)
    assert not origin_allowed("https://meet.example.org", None, set())
