"""TURN credentials in the TURN REST scheme that coturn's ``use-auth-secret`` implements.

draft-uberti-behave-turn-rest-00 section 2.2: the username is ``<expiry unix time>:<user>``,
the password is base64(HMAC-SHA1(shared secret, username)).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TurnCredential:
    username: str
    password: str
    expires_at: int  # Unix seconds


def turn_credential(secret: str, user: str, now_s: int, ttl_s: int) -> TurnCredential:
    expires_at = now_s + ttl_s
    username = f"{expires_at}:{user}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return TurnCredential(username, base64.b64encode(digest).decode(), expires_at)
