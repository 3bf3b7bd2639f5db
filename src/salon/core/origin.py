"""Web origins (RFC 6454): which pages may open the signaling socket or change state over REST.

Pure functions over header values; the server layer reads the headers and acts on the answer.
A browser names the page that started a request in ``Origin``; a page on another site cannot
forge it, which is what defeats cross-site WebSocket hijacking and cross-site request forgery.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Final
from urllib.parse import urlsplit

DEFAULT_PORTS: Final = {"http": 80, "https": 443}
SECURE_SCHEMES: Final = frozenset({"https", "wss"})


def normalize_origin(value: str) -> str | None:
    """``value`` as an origin's ASCII serialization (RFC 6454 §6.2): ``scheme://host[:port]``,
    lower case, the scheme's default port left out. None when it is not an http(s) origin:
    ``null`` (RFC 6454 §7.3, sent by sandboxed frames and ``data:`` pages), a path, user info,
    a bad port."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if (
        scheme not in DEFAULT_PORTS
        or not host
        or parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or "@" in parts.netloc
    ):
        return None
    if ":" in host:
        host = f"[{host}]"  # an IPv6 literal keeps its brackets
    if port is None or port == DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def own_origin(scheme: str, host: str | None) -> str | None:
    """The origin a request was addressed to: its scheme (``ws``/``wss`` count as
    ``http``/``https``) and its ``Host`` header. None without a usable ``Host``."""
    if not host:
        return None
    web_scheme = "https" if scheme in SECURE_SCHEMES else "http"
    return normalize_origin(f"{web_scheme}://{host}")


def origin_allowed(origin: str, own: str | None, allowed: Collection[str]) -> bool:
    """Whether a present ``Origin`` header names this server's own origin or one of the
    configured ``allowed`` origins (already normalized)."""
    normalized = normalize_origin(origin)
    if normalized is None:
        return False
    return normalized == own or normalized in allowed
