"""Meeting links and TLS settings for connecting to a Salon server.

A meeting link is what the web client shows and the server API mints
(docs/PROTOCOL.md §3.8): ``https://host:port/r/ROOM`` with an optional ``#invite=TOKEN``
fragment (RFC 3986 §3.5: the fragment never reaches the server over HTTP; the SDK sends the
token only in ``join.invite``).
"""

from __future__ import annotations

import re
import ssl as _ssl
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

_ROOM_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # PROTOCOL.md §1.3, room id


@dataclass(frozen=True, slots=True)
class MeetingLink:
    """A parsed meeting link.

    ``server`` is the origin, ``"https://host:port"`` (scheme ``http`` or ``https``, no path);
    ``room`` the room id (1-64 of ``A-Za-z0-9_-``) or ``None`` for a bare server address;
    ``invite`` the ``#invite=`` token or ``None``."""

    server: str
    room: str | None
    invite: str | None


def parse_link(link: str) -> MeetingLink:
    """Parse ``https://host[:port]/r/ROOM[#invite=TOKEN]`` (or a bare ``https://host:port``).

    Raises :class:`ValueError` with a sentence saying what is wrong: a scheme other than
    ``http``/``https``, no host, a path other than ``/``, ``/r/ROOM`` or ``/r/ROOM/``, or a room
    id that is not 1-64 characters of ``A-Za-z0-9_-``."""
    parts = urlsplit(link.strip())
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"not a meeting link (expected https://host:port/r/ROOM): {link!r}")
    if not parts.hostname:
        raise ValueError(f"the link names no host: {link!r}")
    try:
        port = parts.port
    except ValueError:
        raise ValueError(f"the link's port is not a number 0-65535: {link!r}") from None
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    server = f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")
    return MeetingLink(server=server, room=_room(parts.path, link), invite=_invite(parts.fragment))


def _room(path: str, link: str) -> str | None:
    path = path.rstrip("/")
    if not path:
        return None
    prefix, _, room = path.partition("/r/")
    if prefix or not room:
        raise ValueError(f"the link's path is not /r/ROOM: {link!r}")
    room = unquote(room)
    if not _ROOM_ID.match(room):
        raise ValueError(f"not a room id (1-64 of A-Z a-z 0-9 - _): {room!r}")
    return room


def _invite(fragment: str) -> str | None:
    tokens = parse_qs(fragment).get("invite")
    return tokens[0] if tokens else None


def ssl_context(*, insecure: bool = False, cafile: str | None = None) -> _ssl.SSLContext | None:
    """The TLS context for ``wss://``/``https://``: ``None`` (the system's trust store, as
    ``websockets`` does by default) unless one option is given.

    ``insecure=True``: no certificate or host name check at all (a self-signed ``salon serve``
    on a LAN; never over the Internet). ``cafile``: a PEM file of CA certificates to trust
    instead of the system's (``OSError`` if it cannot be read, ``ssl.SSLError`` if it holds no
    certificate). Both given: ``ValueError``."""
    if insecure and cafile is not None:
        raise ValueError("--insecure and --cafile exclude each other")
    if cafile is not None:
        return _ssl.create_default_context(cafile=cafile)
    if insecure:
        context = _ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = _ssl.CERT_NONE
        return context
    return None
