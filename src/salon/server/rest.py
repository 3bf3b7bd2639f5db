"""REST under ``/api/v1/``: health, CSRF token, create a room, room info.

Every state-changing route is behind :class:`~salon.server.csrf.CsrfGuard`, set on the
router so a new route cannot forget it."""

from __future__ import annotations

import secrets
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel

from salon.core.admission import account_hosts
from salon.core.passwords import host_key_digest
from salon.core.rooms import CALL_ROOM_PREFIX
from salon.core.validate import ROOM_ID
from salon.server import csrf
from salon.server.accounts import problem, request_address, session_account, spend
from salon.server.origins import OriginPolicy
from salon.server.state import ServerState

BusState = Literal["none", "ok", "degraded"]
SfuState = Literal["none", "starting", "ok", "unreachable", "refused"]


class Health(BaseModel):
    status: str
    version: str
    online: int  # on this process
    rooms: int  # held by this process
    require_sign_in: bool  # only signed-in members may join rooms and create them
    # Which process answered: its id among several (12 hex characters, new at each start).
    process: str
    # The Redis bus between processes (docs/SCALING.md): "none" (one process, no Redis),
    # "ok", or "degraded" (Redis cannot be reached: rooms held here go on, ready is 503).
    bus: BusState
    # The SFU of big rooms (docs/SFU.md): "none" (not configured), "ok", "unreachable"
    # (Janus down or not answering; Salon keeps trying), or "starting" (not checked yet).
    sfu: SfuState = "none"


class CsrfToken(BaseModel):
    token: str  # echo it in the X-CSRF-Token header of state-changing requests


class RoomCreated(BaseModel):
    id: str
    link: str
    # The creator's key: ``join.host_key`` with it makes the joiner a host of this room.
    # 128 bits, URL-safe; only its SHA-256 is stored. Keep it secret.
    host_key: str


class RoomInfo(BaseModel):
    id: str
    exists: bool
    members: int | None  # how many are in it; null when it is protected or locked
    full: bool | None  # it has max_room_members members; null when protected or locked
    protected: bool  # joining needs the room's password
    locked: bool  # nobody new may join or knock
    lobby: bool  # newcomers wait until a host admits them
    # The signed-in asker's account is a host of it by right (its creator, one of the hosts the
    # server API named, or a host earlier in the meeting under way): it joins past every guard.
    host: bool = False


RoomIdPath = Annotated[str, Path(pattern=f"^{ROOM_ID.pattern}$", max_length=64)]


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.salon
    return state


def bus_state(state: ServerState) -> BusState:
    """The bus as health and ready report it: "none" for one process (LocalBus)."""
    if not state.bus.enabled:
        return "none"
    return "ok" if state.bus.healthy else "degraded"


def sfu_state(state: ServerState) -> SfuState:
    """The SFU link as health reports it."""
    link = state.sfu
    if link is None:
        return "none"
    if link.healthy is None:
        return "starting"
    if not link.healthy:
        return "unreachable"
    router = state.router
    if router is None or router.available:
        return "ok"
    return "refused" if router.refused else "starting"


def build_router(version: str, origins: OriginPolicy) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1", tags=["salon"], dependencies=[Depends(csrf.CsrfGuard(origins))]
    )

    def answer(state: ServerState, status: str, bus: BusState) -> Health:
        return Health(
            status=status,
            version=version,
            online=state.hub.online(),
            rooms=len(state.hub.rooms),
            require_sign_in=state.settings.require_sign_in,
            process=state.bus.proc,
            bus=bus,
            sfu=sfu_state(state),
        )

    @router.get("/health")
    async def health(request: Request) -> Health:
        """Liveness: answers while the server can serve, also while its bus is degraded
        (rooms held here go on; restarting would not bring Redis back)."""
        state = _state(request)
        return answer(state, "ok", bus_state(state))

    @router.get(
        "/ready",
        responses={
            503: {
                "description": "draining for a restart, or the bus to the other processes "
                "is degraded: send no new members here"
            }
        },
    )
    async def ready(request: Request, response: Response) -> Health:
        """Readiness: 200 while the server takes new members; 503 (with ``Retry-After``)
        from the first SIGTERM on, while it drains (``status`` "draining"), and while its
        bus is degraded (``status`` "degraded": Redis cannot be reached, so it cannot reach
        rooms held by other processes). A load balancer sends new people only to ready
        servers; liveness stays ``/health``."""
        state = _state(request)
        bus = bus_state(state)
        status = "draining" if state.draining else "degraded" if bus == "degraded" else "ok"
        if status != "ok":
            response.status_code = 503
            response.headers["Retry-After"] = "1"
        return answer(state, status, bus)

    @router.get("/csrf")
    async def csrf_token(request: Request, response: Response) -> CsrfToken:
        """The CSRF token, also set as the ``salon_csrf`` cookie: send it back in the
        ``X-CSRF-Token`` header of every POST, PUT, PATCH and DELETE."""
        response.headers["Cache-Control"] = "no-store"
        return CsrfToken(token=csrf.ensure_cookie(request, response))

    @router.post("/rooms", status_code=201)
    async def create_room(request: Request) -> RoomCreated:
        """Create a room with an unguessable id; returns its id, link and host key (whoever
        joins with it is a host; so is the creating account, when signed in). With
        ``require_sign_in``, only for a signed-in account (401 ``sign_in_required``). Each
        account, or without one each client address, may create ``room_creation_burst`` at
        once, then ``room_creations_per_minute`` (429 ``rate_limited`` with
        ``Retry-After``)."""
        state = _state(request)
        account = await session_account(request)
        if state.settings.require_sign_in and account is None:
            raise problem(401, "sign_in_required", "sign in to create a room on this server")
        creator = f"account\n{account.id}" if account else f"address\n{request_address(request)}"
        spend(state.room_creations, creator, state)
        room_id = secrets.token_urlsafe(12)  # 96 bits
        while room_id.startswith(CALL_ROOM_PREFIX):
            room_id = secrets.token_urlsafe(12)
        host_key = secrets.token_urlsafe(16)  # 128 bits
        username = None if account is None else account.username
        await state.rooms.create(
            room_id, state.clock.wall_ms(), host_key_digest(host_key), username
        )
        base = state.settings.public_url or str(request.base_url)
        link = f"{base.rstrip('/')}/r/{room_id}"
        return RoomCreated(id=room_id, link=link, host_key=host_key)

    @router.get("/rooms/{room_id}")
    async def room_info(request: Request, room_id: RoomIdPath) -> RoomInfo:
        """Whether a room exists (live, or created over REST), how many are in it and whether
        it is full (both null when it is protected or locked: non-members get no count, not
        even whether it reached the limit) and how it is guarded."""
        state = _state(request)
        live = state.hub.rooms.get(room_id)
        if live is not None and live.private:
            raise HTTPException(404, "no such room")
        count = len(live) if live is not None else 0
        stored = None if live is not None else await state.rooms.lookup(room_id)
        # Nobody in it: the next meeting starts with the standing settings, if it has any.
        standing = None if stored is None else stored.standing
        if live is not None:
            protected, locked, lobby = live.protected, live.locked, live.lobby
        elif standing is not None:
            protected = standing.password_hash is not None
            locked, lobby = standing.locked, standing.lobby
        else:
            protected = locked = lobby = False
        told = not (protected or locked)
        account = await session_account(request)
        username = None if account is None else account.username
        if live is not None:
            host = account_hosts(username, live.creator, live.standing, live.host_accounts)
        else:
            host = stored is not None and account_hosts(username, stored.creator, standing)
        return RoomInfo(
            id=room_id,
            exists=live is not None or stored is not None,
            members=count if told else None,
            full=count >= state.settings.limits.max_room_members if told else None,
            protected=protected,
            locked=locked,
            lobby=lobby,
            host=host,
        )

    return router
