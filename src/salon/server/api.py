"""The server API's meetings, under ``/api/v1/meetings``: for other services, with an API key.

Every route needs ``Authorization: Bearer salon_…`` with a scope (:mod:`salon.server.apiauth`):
``meetings:read`` to look, ``meetings:write`` to change. The router has no CSRF guard: a key
travels in a header only, which no browser sends by itself. Refusals are
``{"detail": {"code": …, "message": …}}``; a database that is down is 503
``store_unavailable`` (the app's handler), and other server processes that cannot be asked
about their meetings 503 ``bus_unavailable`` (:class:`MeetingDesk`).

A *meeting* is what goes on in a room while someone is in it (seated, or waiting in its lobby);
a room made here keeps its settings (password, lobby, lock, host accounts) for every meeting
in it. Direct calls' rooms are never shown.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable
from typing import Annotated, Any, Final, Literal, TypeVar

from fastapi import APIRouter, Body, Depends, HTTPException, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from salon.core import validate
from salon.core.errors import SalonError, fail
from salon.core.invites import Invite, InviteRole
from salon.core.passwords import Standing
from salon.core.place import Place
from salon.core.room import Room
from salon.core.rooms import CALL_ROOM_PREFIX, account_of
from salon.protocol import ErrorCode
from salon.server.apiauth import require_scope
from salon.server.front import PeerLost
from salon.server.redisbus import BusDown
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


log = logging.getLogger(__name__)

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


def _who(key: ApiKey) -> str:
    """An API key as the audit log names it (never the key itself)."""
    return f"API key {key.id} ({key.name})"


def _desk(request: Request) -> MeetingDesk:
    desk: MeetingDesk = request.app.state.meetings
    return desk


def _base(request: Request, state: ServerState) -> str:
    return (state.settings.public_url or str(request.base_url)).rstrip("/")


def _live(room: Room) -> bool:
    return not room.private and bool(room.seats or room.waiting)


def _meeting_room(state: ServerState, room_id: str) -> Room | None:
    """The room with a meeting under way (someone seated or waiting), not a call's."""
    room = state.hub.rooms.get(room_id)
    return room if room is not None and _live(room) else None


T = TypeVar("T")

ASK_SECONDS: Final = 3.0
"""How long the process answering an API request waits for another process's answer about
the meetings it holds; then 503 ``bus_unavailable``."""

ASKED: Final = "api"
"""The ``c`` of the server API's ``meeting`` envelopes and their answers (salon.server.pipes)."""

_UNREACHABLE: Final = "the other server processes cannot be reached now: try again"


class MeetingDesk:
    """The meetings under way, wherever their rooms live.

    One process alone reads and acts on its own hub. With several processes (docs/SCALING.md)
    a meeting is held by one process, its room's home: a request about one room goes to that
    process (found by the room's key in Redis; when there is none, as for a home that is
    draining, every process is asked and the one holding the meeting answers), and the list
    gathers every process's meetings, over the bus (``meeting`` envelopes answered by
    ``meeting_answer``, :mod:`salon.server.pipes`). The process that acts writes the audit
    line. Redis unreachable, or a process that does not answer within :data:`ASK_SECONDS`:
    :class:`~salon.core.errors.SalonError` ``bus_unavailable`` (HTTP 503 with
    ``Retry-After``); a remove or an end may still have been carried out there."""

    def __init__(self, state: ServerState) -> None:
        self.state = state
        self._listing: asyncio.Task[list[MeetingSummary]] | None = None
        if state.bus.enabled and state.pipes is not None:
            state.pipes.on("meeting", self._asked)

    async def summaries(self) -> list[MeetingSummary]:
        """Every meeting under way; with a Redis bus ordered by ``started_ms``, those where
        everyone still waits in the lobby last. Concurrent lists share one round of asking
        the other processes."""
        mine = _summaries(self.state)
        if not self.state.bus.enabled:
            return mine
        task = self._listing
        if task is None or task.done():
            task = self._listing = asyncio.create_task(self._others())
            task.add_done_callback(_retrieved)
        found = {summary.id: summary for summary in mine}
        for summary in await asyncio.shield(task):
            found.setdefault(summary.id, summary)
        return sorted(found.values(), key=lambda m: (m.started_ms is None, m.started_ms or 0))

    async def _others(self) -> list[MeetingSummary]:
        answers = await asyncio.gather(*(self._ask(proc, "list") for proc in await self._peers()))
        return [MeetingSummary.model_validate(item) for answer in answers for item in answer or []]

    async def details(self, room_id: str) -> Meeting | None:
        """The meeting under way in ``room_id``, or None."""
        room = _meeting_room(self.state, room_id)
        if room is not None or not self.state.bus.enabled:
            return None if room is None else _details(room)
        for answer in await self._where_held(room_id, "show", room=room_id):
            if answer is not None:
                return Meeting.model_validate(answer)
        return None

    async def remove(self, room_id: str, member_id: str, by: str) -> None:
        """Take a seated member out (``by``: who asks, for the audit line); SalonError
        ``no_such_room``, ``no_such_member``."""
        await self._act("remove", room_id, by, member=member_id)

    async def end(self, room_id: str, by: str) -> None:
        """End the meeting for everyone (``by``: who asks); SalonError ``no_such_room``."""
        await self._act("end", room_id, by)

    async def _act(self, op: str, room_id: str, by: str, **args: str) -> None:
        if _meeting_room(self.state, room_id) is not None or not self.state.bus.enabled:
            self._do(op, room_id, by, **args)
            return
        errors = await self._where_held(room_id, op, room=room_id, by=by, **args, errors=True)
        # The process holding the meeting acted (no error), or says what was wrong with the
        # member; the others only say they have no such meeting.
        if None in errors:
            return
        codes = [error for error in errors if isinstance(error, SalonError)]
        worst = [error for error in codes if error.code is not ErrorCode.NO_SUCH_ROOM]
        raise (worst or codes or [fail(ErrorCode.NO_SUCH_ROOM, "no meeting is under way there")])[0]

    def _do(self, op: str, room_id: str, by: str, member: str = "") -> None:
        """Act on a meeting held here, and write the audit line."""
        hub = self.state.hub
        if op == "remove":
            hub.remove_by_server(room_id, member)
            audit.info("%s removed %s from %s", by, member, room_id)
        elif op == "end":
            hub.end_by_server(room_id)
            audit.info("%s ended meeting %s", by, room_id)
        else:
            raise fail(ErrorCode.BAD_MESSAGE, f"no meeting op {op!r}")

    # ------------------------------------------------------------------ asking

    async def _peers(self) -> list[str]:
        """The other processes (BusDown: ``bus_unavailable``)."""
        bus = self.state.bus
        return [proc for proc in await self._bus(bus.processes()) if proc != bus.proc]

    async def _where_held(
        self, room_id: str, op: str, *, errors: bool = False, **args: str
    ) -> list[Any]:
        """Ask the room's home, or every other process when no live home is known (its home
        drains: it no longer claims the room's key). Returns the answers (with ``errors``:
        each one's error, None for a success)."""
        bus = self.state.bus
        home = await self._bus(bus.room_home(room_id))
        procs = [home] if home is not None and home != bus.proc else await self._peers()
        asks = (self._ask(proc, op, errors=errors, **args) for proc in procs)
        return list(await asyncio.gather(*asks))

    @staticmethod
    async def _bus(lookup: Awaitable[T]) -> T:
        try:
            return await lookup
        except BusDown:
            raise fail(ErrorCode.BUS_UNAVAILABLE, _UNREACHABLE) from None

    async def _ask(self, proc: str, op: str, *, errors: bool = False, **args: str) -> Any:
        """What ``proc`` answers to ``op``: its ``result``, or its error raised here (with
        ``errors``: returned, None when there was none)."""
        pipes, bus = self.state.pipes, self.state.bus
        assert pipes is not None
        request_id = secrets.token_hex(6)
        answer = pipes.expect(ASKED, request_id, proc)
        try:
            envelope = {"k": "meeting", "from": bus.proc, "c": ASKED, "id": request_id}
            if not bus.send(proc, {**envelope, "op": op, **args}):
                raise fail(ErrorCode.BUS_UNAVAILABLE, _UNREACHABLE)
            try:
                async with asyncio.timeout(ASK_SECONDS):
                    envelope = await answer
            except (TimeoutError, PeerLost):
                raise fail(ErrorCode.BUS_UNAVAILABLE, _UNREACHABLE) from None
        finally:
            pipes.forget(ASKED, request_id)
            answer.cancel()
        error = _error_of(envelope.get("error"))
        if errors:
            return error
        if error is not None:
            raise error
        return envelope.get("result")

    def _asked(self, envelope: dict[str, Any]) -> None:
        """Another process asks about the meetings held here (the bus's handler). Always
        answered, with the error when it fails."""
        op, room_id = envelope.get("op"), str(envelope.get("room"))
        result: Any = None
        error: dict[str, str] | None = None
        try:
            if op == "list":
                result = [summary.model_dump(mode="json") for summary in _summaries(self.state)]
            elif op == "show":
                room = _meeting_room(self.state, room_id)
                result = None if room is None else _details(room).model_dump(mode="json")
            else:
                by = f"{envelope.get('by')} (through process {envelope.get('from')})"
                self._do(str(op), room_id, by, member=str(envelope.get("member")))
        except SalonError as exc:
            error = {"code": exc.code.value, "message": exc.message}
        except Exception:
            log.exception("a meeting request could not be answered")
            error = {"code": ErrorCode.INTERNAL.value, "message": "the other process failed"}
        answer = {"k": "meeting_answer", "c": ASKED, "id": envelope["id"]}
        self.state.bus.send(str(envelope["from"]), {**answer, "result": result, "error": error})


def _error_of(error: object) -> SalonError | None:
    """The error another process answered with (an unknown code, from a newer version:
    ``internal``)."""
    if not isinstance(error, dict):
        return None
    try:
        code = ErrorCode(str(error.get("code")))
    except ValueError:
        code = ErrorCode.INTERNAL
    return fail(code, str(error.get("message")))


def _retrieved(task: asyncio.Task[Any]) -> None:
    """Take a shared task's outcome, so an error nobody waited for is not reported."""
    if not task.cancelled():
        task.exception()


def _summaries(state: ServerState) -> list[MeetingSummary]:
    """The meetings under way on this process, in the order their rooms came alive."""
    return [_summary(room) for room in state.hub.rooms.values() if _live(room)]


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
        their rooms came alive (with several processes: by ``started_ms``, those where all
        still wait last). Direct calls are not meetings and are not listed. 503
        ``bus_unavailable``: another process could not be asked."""
        return MeetingList(meetings=await _desk(request).summaries())

    @router.get("/meetings/{room_id}", summary="Show a meeting", responses={**_404, **_422})
    async def show_meeting(request: Request, _key: Reader, room_id: RoomIdPath) -> Meeting:
        """A room's meeting: its members (join order) and who waits in its lobby. A room
        nobody is in is ``live: false`` with empty lists and its standing settings; 404
        ``no_such_room`` when it is neither live nor known to the store."""
        state = _state(request)
        meeting = await _desk(request).details(room_id)
        if meeting is not None:
            return meeting
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
            await _desk(request).remove(room_id, member_id, _who(key))
        except SalonError as exc:
            if exc.code not in _MISSING:
                raise
            raise _problem(404, exc.code.value, exc.message) from None
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
            await _desk(request).end(room_id, _who(key))
        except SalonError as exc:
            if exc.code not in _MISSING:
                raise
            raise _problem(404, exc.code.value, exc.message) from None
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
        if room_id.startswith(CALL_ROOM_PREFIX) or (
            _meeting_room(state, room_id) is None
            and await state.rooms.lookup(room_id) is None
            and await _desk(request).details(room_id) is None  # live on another process
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
