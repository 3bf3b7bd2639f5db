"""Invitations: signed, expiring join links that the server API mints for one room.

An invitation names its room, what it lets its holder do there and when it expires. A
``host`` invitation seats its holder as a host, past the lock, the lobby, the password and an
earlier removal (like the creator's host key). A ``guest`` invitation seats its holder past the
lobby and the password, but not past the lock or a removal. A ``recorder`` invitation, which
only the server mints for the recorder it runs (:mod:`salon.core.recordings`), seats its
holder past the lock, the lobby, the password and a removal, never as a host, once: for the
recording that minted it, until its recorder is seated (any other use is refused). The
holder's client sends it as ``join.invite``; one that is expired, forged or for another room
is ignored, as a wrong host key is (the join goes on as if none was given).

Signed with HMAC-SHA256 (RFC 2104) under the resume secret, bound to its own purpose so that it
can never pass for a resume token, nor one for it. Wire form as for resume tokens:
``<payload>.<mac>``, base64url without padding. Links carry it in the URL's fragment
(``/r/ROOM#invite=TOKEN``), which browsers never send to a server: it stays out of access logs
and ``Referer`` headers. Nothing here does I/O or reads a clock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass
from typing import Final, Literal

from salon.core.resume import _b64, _unb64

_PURPOSE: Final = b"salon-invite-v1."

InviteRole = Literal["host", "guest"]
"""What the server API may mint."""

Role = Literal["host", "guest", "recorder"]
"""What an invitation may say: the API's roles, and the recorder's (minted by the server)."""

_ROLES: Final = frozenset({"host", "guest", "recorder"})

MAX_INVITE_CHARS: Final = 512
"""Longer than any invitation this server mints; ``join.invite`` is refused past it."""


@dataclass(frozen=True, slots=True)
class Invite:
    """What an invitation says. ``expires``: Unix seconds."""

    room: str
    role: Role
    expires: int


class Invites:
    """Mint and check invitations under one secret (at least 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("an invitation secret has at least 32 bytes")
        self._secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self._secret, _PURPOSE + payload.encode(), hashlib.sha256).digest())

    def mint(self, invite: Invite) -> str:
        """The token of ``invite``. Two invitations alike still differ (a random nonce)."""
        body = {"r": invite.room, "o": invite.role, "x": invite.expires, "n": secrets.token_hex(4)}
        payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{self._mac(payload)}"

    def check(self, token: str | None, room: str, now_s: float) -> Invite | None:
        """The invitation ``token`` is, when it is well signed, for ``room`` and not expired
        at ``now_s`` (Unix seconds); else None."""
        if token is None or len(token) > MAX_INVITE_CHARS:
            return None
        payload, dot, mac = token.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            body = json.loads(_unb64(payload))
            invite = Invite(room=body["r"], role=body["o"], expires=body["x"])
        except (ValueError, KeyError, TypeError):
            return None
        if invite.room != room or invite.role not in _ROLES:
            return None
        if not isinstance(invite.expires, int) or invite.expires <= now_s:
            return None
        return invite
