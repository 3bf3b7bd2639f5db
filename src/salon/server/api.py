"""The server API's meetings, under ``/api/v1/meetings``: for other services, with an API key.

Every route needs ``Authorization: Bearer salon_…`` with a scope (:mod:`salon.server.apiauth`):
``meetings:read`` to look, ``meetings:write`` to change. The router has no CSRF guard: a key
travels in a header only, which no browser sends by itself. Refusals are
``{"detail": {"code": …, "message": …}}``; a database that is down is 503
``store_unavailable`` (the app's handler).

A *meeting* is what goes on in a room while someone is in it (seated, or waiting in its lobby);
a room made here keeps its settings (password, lobby, lock, host accounts) for every meeting
in it. Direct calls' rooms are never shown.
"""

from __future__ import annotations

import logging
import secrets
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from salon.core import validate
from salon.core.errors import SalonError
from salon.core.invites import Invite, InviteRole
from salon.core.passwords import Standing
from salon.core.place import Place
from salon.core.room import Room
from salon.core.rooms import CALL_ROOM_PREFIX, account_of
from salon.protocol import ErrorCode
from salon.server.apiauth import require_scope
from salon.server.rest import RoomIdPath
from salon.server.state import ServerState
from salon.store.apikeys import ApiKey

MIN_LINK_SECONDS = 60
"""The shortest life of a join link (``ttl_seconds``); the longest is
``Settings.invite_max_seconds``."""

DEFAULT_LINK_SECONDS = 86_400
"""A join link's life when ``ttl_seconds`` is not given (or ``invite_max_seconds``, if
shorter)."""

MemberIdPath = Annotated[str, Path(pattern=f"^{validate.ROOM_ID.pattern}$", max_length=64)]


audit = logging.getLogger("salon.audit")
"""What each API key did (never the key itself): who created, removed, ended, invited."""


def _examples(*examples: dict[str, Any], strict: bool = False) -> ConfigDict:
    """Examples for the OpenAPI document; ``strict`` (request bodies): an unknown field is a
    422, so a typo ("pasword") never quietly makes a weaker meeting."""
    config = ConfigDict(json_schema_extra={"examples": list(examples)})
    if strict:
        config["extra"] = "forbid"
    return config


class Problem(BaseModel):
    """Why a request was refused: a stable ``code`` and a sentence."""

    code: str
    message: str


class ProblemResponse(BaseModel):
    detail: Problem


class FieldProblem(BaseModel):
    loc: list[str | int]  # where: ["body", "ttl_seconds"], ["path", "room_id"]
    msg: str
    type: str


class ValidationProblem(BaseModel):
    """A malformed request (FastAPI's form): a wrong type, a room id with other characters."""

    detail: list[FieldProblem]


class MeetingRequest(BaseModel):
    """A room to meet in, and the settings every meeting in it starts with."""

    model_config = _examples(
        {"password": "correct horse", "lobby": True, "hosts": ["alice"]},
        {"mode": "mesh"},
        strict=True,
    )

    # mesh: everyone sends to everyone, and the room moves to the SFU when it grows past the
    # mesh limit; large: through the SFU from the first member on (422 sfu_unavailable on a
    # server without one). docs/SFU.md.
    mode: Literal["mesh", "large"] = "mesh"
    password: str | None = None  # joining needs it (host accounts and links excepted)
    lobby: bool = False  # newcomers wait until a host admits them
    locked: bool = False  # nobody new gets in but hosts (accounts or host links)
    hosts: list[str] = Field(default_factory=list)  # usernames of accounts that are its hosts


class MeetingCreated(BaseModel):
    model_config = _examples(
        {
            "id": "q3vH0pXk2LmN8aB1",
            "link": "https://meet.example.org/r/q3vH0pXk2LmN8aB1",
            "mode": "mesh",
            "protected": True,
            "lobby": True,
            "locked": False,
            "hosts": ["alice"],
        }
    )

    id: str
    link: str  # the room's page; joining it asks for the password, or knocks
    mode: Literal["mesh", "large"]
    protected: bool  # joining needs the password
    lobby: bool
    locked: bool
    hosts: list[str]  # usernames, as the accounts spell them


class MeetingSummary(BaseModel):
    model_config = _examples(
        {
            "id": "q3vH0pXk2LmN8aB1",
            "started_ms": 1767225600000,
            "members": 3,
            "waiting": 1,
            "locked": False,
            "lobby": True,
            "protected": True,
        }
    )

    id: str
    started_ms: int | None  # Unix ms its first member was seated; null while all wait
    members: int  # seated (including those briefly away)
    waiting: int  # in its lobby
    locked: bool
    lobby: bool
    protected: bool


class MeetingList(BaseModel):
    meetings: list[MeetingSummary]  # the live meetings, oldest room first


class MeetingMember(BaseModel):
    id: str  # the member id, as in the protocol
    name: str  # display name in the room
    account: str | None  # username when signed in
    host: bool
    mic: bool
    camera: bool
    screen: bool
    hand: bool  # raised
    away: bool  # its connection is lost; it keeps its seat for resume_grace_seconds
    joined_ms: int  # Unix ms it was seated


class Waiting(BaseModel):
    id: str
    name: str


class Meeting(BaseModel):
    model_config = _examples(
        {
            "id": "q3vH0pXk2LmN8aB1",
            "live": True,
            "started_ms": 1767225600000,
            "locked": False,
            "lobby": True,
            "protected": True,
            "members": [
                {
                    "id": "Jd83kPq0aZx1",
                    "name": "Alice",
                    "account": "alice",
                    "host": True,
                    "mic": True,
                    "camera": True,
                    "screen": False,
                    "hand": False,
                    "away": False,
                    "joined_ms": 1767225600000,
                }
            ],
            "waiting": [{"id": "b7Yt2mQw9LcE", "name": "Bob"}],
        }
    )

    id: str
    live: bool  # someone is in it (seated or waiting); else the room's standing settings
    started_ms: int | None
    locked: bool
    lobby: bool
    protected: bool
    members: list[MeetingMember]  # in join order
    waiting: list[Waiting]  # earliest first


class LinkRequest(BaseModel):
    model_config = _examples({"role": "host", "ttl_seconds": 3600}, {"role": "guest"}, strict=True)

    # host: seated as a host, past lock, lobby, password and an earlier removal;
    # guest: seated past the lobby and the password (not the lock, nor a removal).
    role: InviteRole = "guest"
    # At least 60, at most Settings.invite_max_seconds; default a day (or that, if shorter).
    ttl_seconds: int | None = None


class LinkCreated(BaseModel):
    model_config = _examples(
        {
            "link": "https://meet.example.org/r/q3vH0pXk2LmN8aB1#invite=eyJyIjoi…",
            "role": "host",
            "expires_ms": 1767229200000,
        }
    )

    link: str  # the invitation rides in the fragment: browsers never send it to a server
    role: InviteRole
    expires_ms: int  # Unix ms; the link admits nobody from then on


def _problem(status: int, code: str, message: str) -> HTTPException:
    return HTTPException(status, detail={"code": code, "message": message})


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.salon
    return state


def _base(request: Request, state: ServerState) -> str:
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


def _live(room: Room) -> bool:
    return not room.private and bool(room.seats or room.waiting)


def _meeting_room(state: ServerState, room_id: str) -> Room | None:
    """The room with a meeting under way (someone seated or waiting), not a call's."""
    room = state.hub.rooms.get(room_id)
    return room if room is not None and _live(room) else None


def _summary(room: Room) -> MeetingSummary:
    return MeetingSummary(
        id=room.id,
        started_ms=room.started_ms,
        members=len(room.seats),
        waiting=len(room.waiting),
        locked=room.locked,
        lobby=room.lobby,
        protected=room.protected,
    )


def _details(room: Room) -> Meeting:
    members = [
        MeetingMember(
            id=mid,
            name=seat.member.name,
            account=account_of(seat.member),
            host=mid in room.hosts,
            mic=seat.media.mic,
            camera=seat.media.camera,
            screen=seat.media.screen,
            hand=mid in room.hands,
            away=isinstance(seat.member, Place) and seat.member.away,
            joined_ms=seat.joined_ms,
        )
        for mid, seat in room.seats.items()
    ]
    waiting = [Waiting(id=mid, name=knock.member.name) for mid, knock in room.waiting.items()]
    return Meeting(
        id=room.id,
        live=True,
        started_ms=room.started_ms,
        locked=room.locked,
        lobby=room.lobby,
        protected=room.protected,
        members=members,
        waiting=waiting,
    )


async def _host_accounts(state: ServerState, names: list[str]) -> tuple[str, ...]:
    """The usernames of ``names`` as their accounts spell them, without repeats; 422
    ``too_many_hosts`` past ``max_room_host_accounts``, ``no_such_account`` naming the first
    that is not an account."""
    limit = state.settings.limits.max_room_host_accounts
    if len(names) > limit:
        raise _problem(422, "too_many_hosts", f"at most {limit} host accounts")
    found: dict[str, None] = {}
    for name in names:
        try:
            username = validate.display_name(name, state.settings.limits.max_name_chars)
        except SalonError:  # not even a valid name
            creds = None
        else:  # store trouble passes: 503, not "no such account"
            creds = await state.accounts.credentials(validate.account_key(username))
        if creds is None:
            raise _problem(422, "no_such_account", f"no account is called {name[:100]!r}")
        found[creds.account.username] = None
    return tuple(found)


async def _password_hash(state: ServerState, password: str | None) -> str | None:
    if password is None:
        return None
    limit = state.settings.limits.max_password_chars
    if not password:
        raise _problem(422, "invalid_password", "an empty password: leave it out for none")
    if len(password) > limit:
        raise _problem(422, "invalid_password", f"a room password has at most {limit} chars")
    return await state.rooms.hash_password(password)


_MISSING = (ErrorCode.NO_SUCH_ROOM, ErrorCode.NO_SUCH_MEMBER)  # the hub's errors that are 404


Reader = Annotated[ApiKey, Depends(require_scope("meetings:read"))]
Writer = Annotated[ApiKey, Depends(require_scope("meetings:write"))]

Responses = dict[int | str, dict[str, Any]]

_AUTH: Responses = {
    401: {"model": ProblemResponse, "description": "no API key, or a wrong or revoked one"},
    403: {"model": ProblemResponse, "description": "the key lacks this route's scope"},
}
_404: Responses = {404: {"model": ProblemResponse, "description": "no such room (or member)"}}
_422: Responses = {
    422: {
        "model": ProblemResponse | ValidationProblem,
        "description": "a setting is refused (see detail.code), or the request is malformed",
    }
}


def build_api_router() -> APIRouter:
    """The meetings routes. No CSRF guard: they take an API key from a header only."""
    router = APIRouter(prefix="/api/v1", tags=["server API: meetings"], responses=_AUTH)

    @router.post("/meetings", status_code=201, summary="Create a meeting", responses=_422)
    async def create_meeting(
        request: Request,
        key: Writer,
        body: Annotated[MeetingRequest, Body()] = MeetingRequest(),  # noqa: B008
    ) -> MeetingCreated:
        """Make a room with an unguessable id whose every meeting starts with these settings.
        ``hosts``: usernames of existing accounts (at most ``max_room_host_accounts``), hosts
        of it whenever they join; ``password``: at most ``max_password_chars``. 422 codes:
        ``sfu_unavailable`` (``mode: large`` on a server without an SFU), ``invalid_password``,
        ``no_such_account``, ``too_many_hosts``. Nobody is a host for coming first: join with
        a host account or a host link (``POST /meetings/{id}/links``)."""
        state = _state(request)
        if body.mode == "large" and state.router is None:
            raise _problem(422, "sfu_unavailable", "this server has no SFU: only mesh meetings")
        hosts = await _host_accounts(state, body.hosts)
        password_hash = await _password_hash(state, body.password)
        room_id = secrets.token_urlsafe(12)  # 96 bits
        while room_id.startswith(CALL_ROOM_PREFIX):
            room_id = secrets.token_urlsafe(12)
        standing = Standing(password_hash, body.lobby, body.locked, hosts, body.mode == "large")
        await state.rooms.create(room_id, state.clock.wall_ms(), None, None, standing=standing)
        audit.info("API key %s (%s) created meeting %s", key.id, key.name, room_id)
        return MeetingCreated(
            id=room_id,
            link=f"{_base(request, state)}/r/{room_id}",
            mode=body.mode,
            protected=password_hash is not None,
            lobby=body.lobby,
            locked=body.locked,
            hosts=list(hosts),
        )

    @router.get("/meetings", summary="List live meetings")
    async def list_meetings(request: Request, _key: Reader) -> MeetingList:
        """Every meeting under way on this server (someone seated or waiting), in the order
        their rooms came alive. Direct calls are not meetings and are not listed."""
        hub = _state(request).hub
        rooms = list(hub.rooms.values())
        return MeetingList(meetings=[_summary(room) for room in rooms if _live(room)])

    @router.get("/meetings/{room_id}", summary="Show a meeting", responses={**_404, **_422})
    async def show_meeting(request: Request, _key: Reader, room_id: RoomIdPath) -> Meeting:
        """A room's meeting: its members (join order) and who waits in its lobby. A room
        nobody is in is ``live: false`` with empty lists and its standing settings; 404
        ``no_such_room`` when it is neither live nor known to the store."""
        state = _state(request)
        room = _meeting_room(state, room_id)
        if room is not None:
            return _details(room)
        stored = None if room_id.startswith(CALL_ROOM_PREFIX) else await state.rooms.lookup(room_id)
        if stored is None:
            raise _problem(404, "no_such_room", "no such room")
        standing = stored.standing or Standing()
        return Meeting(
            id=room_id,
            live=False,
            started_ms=None,
            locked=standing.locked,
            lobby=standing.lobby,
            protected=standing.password_hash is not None,
            members=[],
            waiting=[],
        )

    @router.delete(
        "/meetings/{room_id}/members/{member_id}",
        status_code=204,
        summary="Remove a member",
        responses={**_404, **_422},
    )
    async def remove_member(
        request: Request, key: Writer, room_id: RoomIdPath, member_id: MemberIdPath
    ) -> Response:
        """Take a seated member out of the meeting: its client gets ``left{removed}`` with
        ``by`` null, the room ``room_event{removed}``. Coming back with the link, it knocks
        (marked removed). 404 ``no_such_room`` (no meeting under way), ``no_such_member``."""
        try:
            _state(request).hub.remove_by_server(room_id, member_id)
        except SalonError as exc:
            if exc.code not in _MISSING:
                raise
            raise _problem(404, exc.code.value, exc.message) from None
        audit.info("API key %s (%s) removed %s from %s", key.id, key.name, member_id, room_id)
        return Response(status_code=204)

    @router.post(
        "/meetings/{room_id}/end",
        status_code=204,
        summary="End a meeting",
        responses={**_404, **_422},
    )
    async def end_meeting(request: Request, key: Writer, room_id: RoomIdPath) -> Response:
        """End the meeting for everyone: members get ``left{ended}``, those waiting
        ``lobby_denied{ended}``. The room stays: its next meeting starts with its standing
        settings. 404 ``no_such_room`` when no meeting is under way there."""
        try:
            _state(request).hub.end_by_server(room_id)
        except SalonError as exc:
            if exc.code not in _MISSING:
                raise
            raise _problem(404, exc.code.value, exc.message) from None
        audit.info("API key %s (%s) ended meeting %s", key.id, key.name, room_id)
        return Response(status_code=204)

    @router.post(
        "/meetings/{room_id}/links",
        status_code=201,
        summary="Mint a join link",
        responses={**_404, **_422},
    )
    async def mint_link(
        request: Request,
        key: Writer,
        room_id: RoomIdPath,
        body: Annotated[LinkRequest, Body()] = LinkRequest(),  # noqa: B008
    ) -> LinkCreated:
        """A signed link into the room that expires after ``ttl_seconds`` (60 s up to
        ``invite_max_seconds``, else 422 ``invalid_ttl``; default a day, or
        ``invite_max_seconds`` when shorter). The body may be left out: a guest link.
        ``host``: its holder is seated as a host, past the lock, lobby, password and an
        earlier removal; ``guest``: past the lobby and the password. Anyone holding it may
        use it, as often as they like, until it expires: hand it out as you would a key.
        404 ``no_such_room`` when the room is neither live nor known to the store."""
        state = _state(request)
        longest = state.settings.invite_max_seconds
        ttl = min(DEFAULT_LINK_SECONDS, longest) if body.ttl_seconds is None else body.ttl_seconds
        if not MIN_LINK_SECONDS <= ttl <= longest:
            message = f"ttl_seconds is from {MIN_LINK_SECONDS} to {longest}"
            raise _problem(422, "invalid_ttl", message)
        if _meeting_room(state, room_id) is None and (
            room_id.startswith(CALL_ROOM_PREFIX) or await state.rooms.lookup(room_id) is None
        ):
            raise _problem(404, "no_such_room", "no such room")
        expires = state.clock.wall_ms() // 1000 + ttl
        token = state.hub.invites.mint(Invite(room_id, body.role, expires))
        link = f"{_base(request, state)}/r/{room_id}#invite={token}"
        audit.info(
            "API key %s (%s) minted a %s link to %s for %d s",
            key.id,
            key.name,
            body.role,
            room_id,
            ttl,
        )
        return LinkCreated(link=link, role=body.role, expires_ms=expires * 1000)

    return router
