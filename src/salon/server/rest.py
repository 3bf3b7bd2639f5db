"""REST under ``/api/v1/``: health, CSRF token, create a room, room info.

Every state-changing route is behind :class:`~salon.server.csrf.CsrfGuard`, set on the
router so a new route cannot forget it."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel

from salon.core.rooms import CALL_ROOM_PREFIX
from salon.core.validate import ROOM_ID
from salon.server import csrf
from salon.server.accounts import problem, session_account
from salon.server.origins import OriginPolicy
from salon.server.state import ServerState


class Health(BaseModel):
    status: str
    version: str
    online: int
    rooms: int


class CsrfToken(BaseModel):
    token: str  # echo it in the X-CSRF-Token header of state-changing requests


class RoomCreated(BaseModel):
    id: str
    link: str


class RoomInfo(BaseModel):
    id: str
    exists: bool
    members: int
    full: bool
    protected: bool  # joining needs the room's password


RoomIdPath = Annotated[str, Path(pattern=f"^{ROOM_ID.pattern}$", max_length=64)]


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.salon
    return state


def build_router(version: str, origins: OriginPolicy) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1", tags=["salon"], dependencies=[Depends(csrf.CsrfGuard(origins))]
    )

    @router.get("/health")
    async def health(request: Request) -> Health:
        """Liveness: answers while the server can serve."""
        state = _state(request)
        return Health(
            status="ok", version=version, online=state.hub.online(), rooms=len(state.hub.rooms)
        )

    @router.get(
        "/ready",
        responses={503: {"description": "draining for a restart: send no new members here"}},
    )
    async def ready(request: Request, response: Response) -> Health:
        """Readiness: 200 while the server takes new members, 503 (with ``Retry-After``)
        from the first SIGTERM on, while it drains. A load balancer sends new people only to
        ready servers; liveness stays ``/health``."""
        state = _state(request)
        draining = state.draining
        if draining:
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        return Health(
            status="draining" if draining else "ok",
            version=version,
            online=state.hub.online(),
            rooms=len(state.hub.rooms),
        )

    @router.get("/csrf")
    async def csrf_token(request: Request, response: Response) -> CsrfToken:
        """The CSRF token, also set as the ``salon_csrf`` cookie: send it back in the
        ``X-CSRF-Token`` header of every POST, PUT, PATCH and DELETE."""
        response.headers["Cache-Control"] = "no-store"
        return CsrfToken(token=csrf.ensure_cookie(request, response))

    @router.post("/rooms", status_code=201)
    async def create_room(request: Request) -> RoomCreated:
        """Create a room with an unguessable id; returns its id and link. With
        ``require_sign_in``, only for a signed-in account (401 ``sign_in_required``)."""
        state = _state(request)
        if state.settings.require_sign_in and await session_account(request) is None:
            raise problem(401, "sign_in_required", "sign in to create a room on this server")
        room_id = secrets.token_urlsafe(12)  # 96 bits
        while room_id.startswith(CALL_ROOM_PREFIX):
            room_id = secrets.token_urlsafe(12)
        await state.rooms.create(room_id, state.clock.wall_ms())
        base = state.settings.public_url or str(request.base_url)
        return RoomCreated(id=room_id, link=f"{base.rstrip('/')}/r/{room_id}")

    @router.get("/rooms/{room_id}")
    async def room_info(request: Request, room_id: RoomIdPath) -> RoomInfo:
        """Whether a room exists (live, or created over REST) and how many are in it."""
        state = _state(request)
        live = state.hub.rooms.get(room_id)
        if live is not None and live.private:
            raise HTTPException(404, "no such room")
        members = len(live) if live is not None else 0
        stored = await state.rooms.lookup(room_id)
        full = members >= state.settings.limits.max_room_members
        return RoomInfo(
            id=room_id,
            exists=live is not None or stored is not None,
            members=members,
            full=full,
            protected=stored is not None and stored.protected,
        )

    return router
