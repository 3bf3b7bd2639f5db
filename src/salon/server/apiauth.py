"""API keys on the server API: ``Authorization: Bearer salon_<id>_<secret>``, and nothing else.

A route of the server API depends on :func:`require_scope`::

    @router.get("/meetings")
    async def meetings(key: Annotated[ApiKey, Depends(require_scope("meetings:read"))]): ...

The key is read from the ``Authorization`` header only — never from a cookie, a query string
or a form — so a browser never sends one by itself and a page on another site cannot ride
it: routers of the server API need no CSRF guard (:mod:`salon.server.csrf`), and a browser's
``salon_session`` cookie grants nothing here. Refusals (RFC 6750 §3):

- 401 ``{"detail": {"code": "invalid_api_key", "message": …}}`` with ``WWW-Authenticate:
  Bearer …`` when the header is missing, not a Salon key, unknown, wrong or revoked;
- 403 ``{"detail": {"code": "insufficient_scope", "message": …}}`` when the key lacks the
  route's scope.

A key's ``last_used_ms`` is written at most once a minute per key (:data:`TOUCH_EVERY_MS`), not
on every request.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Final

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from salon.core.clock import Clock
from salon.server.state import ServerState
from salon.store.apikeys import ApiKey, Scope, SqlApiKeyRepository

TOUCH_EVERY_MS: Final = 60_000
"""A key's ``last_used_ms`` is at most this old (while the server that saw it runs)."""

_REALM: Final = 'Bearer realm="salon"'

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiKey",
    description="An API key made with `salon api-key create NAME`: "
    "`Authorization: Bearer salon_<id>_<secret>`.",
)


class ApiKeyAuth:
    """One server's key checks: the ``api_keys`` store and when each key was last touched."""

    def __init__(self, keys: SqlApiKeyRepository, clock: Clock) -> None:
        self.keys = keys
        self.clock = clock
        self._touched: dict[str, int] = {}  # key id -> wall ms of its last write

    async def authenticate(self, token: str | None) -> ApiKey:
        """The live key ``token`` is; 401 ``invalid_api_key`` otherwise."""
        key = None if token is None else await self.keys.authenticate(token)
        if key is None or key.revoked:
            if token is None:
                message = "send an API key: Authorization: Bearer salon_..."
            else:
                message = "this API key was revoked" if key else "unknown or wrong API key"
            detail = {"code": "invalid_api_key", "message": message}
            challenge = _REALM if token is None else f'{_REALM}, error="invalid_token"'
            raise HTTPException(401, detail=detail, headers={"WWW-Authenticate": challenge})
        now = self.clock.wall_ms()
        if now - self._touched.get(key.id, -TOUCH_EVERY_MS) >= TOUCH_EVERY_MS:
            self._touched[key.id] = now
            await self.keys.touch(key.id, now)
        return key


def api_key_auth(request: Request) -> ApiKeyAuth:
    """The app's :class:`ApiKeyAuth`, made on first use from its server state."""
    auth: ApiKeyAuth | None = getattr(request.app.state, "salon_api_keys", None)
    if auth is None:
        state: ServerState = request.app.state.salon
        auth = ApiKeyAuth(SqlApiKeyRepository(state.engine), state.clock)
        request.app.state.salon_api_keys = auth
    return auth


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def require_scope(scope: Scope) -> Callable[[Request, Credentials], Awaitable[ApiKey]]:
    """A FastAPI dependency: the request's API key when it is live and holds ``scope``;
    401 ``invalid_api_key`` or 403 ``insufficient_scope`` otherwise (see the module)."""

    async def guard(request: Request, credentials: Credentials) -> ApiKey:
        token = None if credentials is None else credentials.credentials
        key = await api_key_auth(request).authenticate(token)
        if scope not in key.scopes:
            detail = {"code": "insufficient_scope", "message": f"this key lacks {scope}"}
            challenge = f'{_REALM}, error="insufficient_scope", scope="{scope}"'
            raise HTTPException(403, detail=detail, headers={"WWW-Authenticate": challenge})
        return key

    return guard
