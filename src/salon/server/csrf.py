"""Cross-site request forgery: every state-changing REST request must come from our pages.

Two independent checks, both required on POST, PUT, PATCH and DELETE under ``/api/v1``:

1. **Origin.** The ``Origin`` header names this server's own origin or a configured one
   (:mod:`salon.server.origins`); a request without ``Origin`` passes only with
   ``Sec-Fetch-Site: same-origin``. A non-browser client sends ``Origin`` itself.
2. **Double-submit token.** The ``salon_csrf`` cookie (``SameSite=Strict``, ``Secure`` over
   TLS, readable by the page's script) is echoed in the ``X-CSRF-Token`` header. A page on
   another site can make the browser send the cookie, never read it to copy it into a header.

The cookie is set by ``GET /api/v1/csrf`` (which also returns the token) and by every load of
the client's pages. A refusal is ``403 {"detail": {"code": "csrf", "message": "…"}}``.
"""

from __future__ import annotations

import hmac
import re
import secrets
from typing import Final

from fastapi import HTTPException, Request, Response

from salon.server.origins import OriginPolicy

COOKIE: Final = "salon_csrf"
HEADER: Final = "X-CSRF-Token"
SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
_TOKEN: Final = re.compile(r"[A-Za-z0-9_-]{43}")  # secrets.token_urlsafe(32): 256 bits


def refused(message: str) -> HTTPException:
    return HTTPException(403, detail={"code": "csrf", "message": message})


def _valid(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def ensure_cookie(request: Request, response: Response) -> str:
    """The request's CSRF token, minting one (and setting the cookie) if it has none."""
    token = request.cookies.get(COOKIE, "")
    if _valid(token):
        return token
    token = secrets.token_urlsafe(32)
    response.set_cookie(
        COOKIE,
        token,
        path="/",
        samesite="strict",
        secure=request.url.scheme == "https",  # the scope's scheme: TLS, or a trusted proxy's
        httponly=False,  # the page's script reads it to echo it in X-CSRF-Token
    )
    return token


class CsrfGuard:
    """A FastAPI dependency for the REST router: refuses a cross-site state change."""

    def __init__(self, origins: OriginPolicy) -> None:
        self.origins = origins

    async def __call__(self, request: Request) -> None:
        if request.method in SAFE_METHODS:
            return
        origin = self.origins.check(request)
        if origin is False:
            raise refused("cross-site request refused: Origin is not this server's")
        if origin is None and request.headers.get("sec-fetch-site") != "same-origin":
            raise refused("a state-changing request needs this server's Origin header")
        cookie = request.cookies.get(COOKIE, "")
        header = request.headers.get(HEADER, "")
        if not (_valid(cookie) and _valid(header)):
            raise refused(f"missing CSRF token: send the {COOKIE} cookie's value in {HEADER}")
        if not hmac.compare_digest(cookie.encode(), header.encode()):
            raise refused(f"wrong CSRF token: {HEADER} must equal the {COOKIE} cookie")
