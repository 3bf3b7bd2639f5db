"""Known devices: a signed token a browser earns by signing in to an account, so that a
stranger guessing that account's password cannot lock its owner out.

Sign-in throttles are keyed by who asks. A browser without a token shares the budgets of its
client address and of the account name (a ceiling over all addresses); a browser holding a
token for the account has a budget of its own and is exempt from both, so guesses made
elsewhere never reach it (OWASP Authentication Cheat Sheet, "device cookies"). The token names
the account by its name key (§1.4 of docs/PROTOCOL.md), known before any database read, and a
random device id; it is HMAC-SHA256 signed under the server's secret.

Shape: ``<device id, 22 URL-safe base64 chars>.<MAC, 43 chars>``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

_PURPOSE = b"salon known device v1\x00"


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class KnownDevices:
    """Issue and check known-device tokens under one secret (at least 32 bytes)."""

    def __init__(self, secret: bytes) -> None:
        if len(secret) < 32:
            raise ValueError("a device secret has at least 32 bytes")
        self._secret = secret

    def _mac(self, device: str, account_key: str) -> str:
        message = _PURPOSE + device.encode() + b"\x00" + account_key.encode()
        return _b64(hmac.new(self._secret, message, hashlib.sha256).digest())

    def issue(self, account_key: str) -> str:
        """A new token for a browser that just signed in to the account ``account_key``."""
        device = _b64(secrets.token_bytes(16))
        return f"{device}.{self._mac(device, account_key)}"

    def device(self, token: str | None, account_key: str) -> str | None:
        """The device id of a well-signed token for ``account_key``, else None (no token, a
        malformed or forged one, or one earned on another account)."""
        if not token or len(token) > 128:
            return None
        device, dot, mac = token.partition(".")
        if not dot or not device:
            return None
        if not hmac.compare_digest(mac.encode(), self._mac(device, account_key).encode()):
            return None
        return device
