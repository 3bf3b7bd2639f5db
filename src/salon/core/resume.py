"""Resume tokens: a member's place, signed rather than remembered.

A token names the member id, its name, its account, its room (and for a direct call, the call
and the other member) and when it expires. It is signed with HMAC-SHA256 (RFC 2104) under a
server secret, so a server that restarted, or another process holding the same secret, can
rebuild the place from the token alone. Nothing here does I/O or reads a clock: time comes in
as an argument.

Wire form: ``<payload>.<mac>``, both base64url without padding; ``payload`` is compact JSON.
Clients treat the token as opaque.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import Any, Final

_PURPOSE: Final = b"salon-resume-v1."
"""Bound into every MAC, so a token can never pass for another signed value of Salon."""


@dataclass(frozen=True, slots=True)
class Claims:
    """What a resume token says. ``expires`` is in Unix seconds."""

    member: str
    name: str
    account: str | None  # the username of the account it was signed in as, None for a guest
    room: str | None
    call: str | None  # a direct call's id when ``room`` is that call's private room
    peer: str | None  # the other member of that call
    expires: int
    guarded: bool = False  # ``room`` had a password when the member was let in
    host: bool = False  # the member was a host of ``room``
    reachable: bool = False  # the member's name was reachable for direct calls


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class ResumeTokens:
    """Issue and verify tokens under one secret (at least 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a resume secret has at least 32 bytes")
        self.secret = secret

    def _mac(self, payload: str) -> str:
        return _b64(hmac.new(self.secret, _PURPOSE + payload.encode(), hashlib.sha256).digest())

    def issue(self, claims: Claims) -> str:
        body: dict[str, Any] = {
            "m": claims.member,
            "n": claims.name,
            "a": claims.account,
            "r": claims.room,
            "c": claims.call,
            "p": claims.peer,
            "x": claims.expires,
            "g": claims.guarded,
            "o": claims.host,
            "v": claims.reachable,
        }
        payload = _b64(json.dumps(body, separators=(",", ":"), ensure_ascii=False).encode())
        return f"{payload}.{self._mac(payload)}"

    def verify(self, token: str, now_s: float) -> Claims | None:
        """The claims of a well-signed token that has not expired at ``now_s``, else None."""
        payload, dot, mac = token.partition(".")
        if not dot or not hmac.compare_digest(mac.encode(), self._mac(payload).encode()):
            return None
        try:
            body = json.loads(_unb64(payload))
            claims = Claims(
                member=_text(body["m"]),
                name=_text(body["n"]),
                account=_optional(body["a"]),
                room=_optional(body["r"]),
                call=_optional(body["c"]),
                peer=_optional(body["p"]),
                expires=body["x"],
                guarded=body.get("g", False),  # absent in tokens from before it existed
                host=body.get("o", False),
                reachable=body.get("v", False),
            )
        except (ValueError, KeyError, TypeError):
            return None  # well signed but not ours to read: a format from another version
        if not isinstance(claims.expires, int) or claims.expires <= now_s:
            return None
        if not all(isinstance(f, bool) for f in (claims.guarded, claims.host, claims.reachable)):
            return None
        return claims


def _text(value: object) -> str:
    if not isinstance(value, str):
        raise TypeError("expected a string")
    return value


def _optional(value: object) -> str | None:
    return None if value is None else _text(value)
