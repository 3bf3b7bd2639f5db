"""Rooms whose media goes through Janus's VideoRoom plugin (docs/SFU.md, PROTOCOL.md §3.10):
the :class:`~salon.core.sfu.MediaRouter` the rooms use when an SFU is configured.

For each meeting on the SFU, Janus has one VideoRoom room (its id: the meeting's id; created
with the ``admin_key`` only Salon holds, private, so nobody can list it). For each member,
Salon holds one Janus session with two handles (https://janus.conf.meetecho.com/docs/
videoroom.html): a *publisher* joined as the member's own id, which takes the member's
``sfu_publish`` offers (``configure``), and a multistream *subscriber*, which Salon subscribes
to every other publisher of the room as they appear and whose offers it relays to the member as
``sfu_offer``. The browser only ever exchanges media with Janus; the API secret and the
``admin_key`` never leave this process.

Offers to a member's receiving connection are made one at a time: a new subscription waits
until the member answered the last offer (or :data:`ANSWER_SECONDS` passed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from salon.core.member import Member
from salon.core.sfu import SfuConnection, SfuError
from salon.protocol import Outgoing
from salon.protocol.messages import IceCandidate, SessionDescription, SfuOffer, SfuStream
from salon.server.janus import JanusApi, JanusError, JanusEvent, SfuLink

log = logging.getLogger(__name__)

VIDEOROOM: Final = "janus.plugin.videoroom"
ANSWER_SECONDS: Final = 10.0
"""How long a new subscription waits for the member's answer to the previous offer."""
NO_SUCH_FEED: Final = 428  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED: it left meanwhile


@dataclass(eq=False)
class _Place:
    """One member's place on the SFU: its Janus session and handles."""

    member: Member
    meeting: str
    session: int | None = None
    publisher: int | None = None
    subscriber: int | None = None
    feeds: set[str] = field(default_factory=set)  # the publishers it is subscribed to
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # no offer pending
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one subscription at a time
    ready: asyncio.Task[None] | None = None  # the session, joined as a publisher

    def __post_init__(self) -> None:
        self.answered.set()


class JanusRouter:
    """The rooms' :class:`~salon.core.sfu.MediaRouter` on a Janus at ``url``, which ``link``
    watches (``available`` is its health). One WebSocket to Janus carries every member's
    requests; every Janus session Salon holds is kept alive on it every ``check_seconds``."""

    def __init__(
        self,
        url: str,
        api_secret: str | None,
        admin_key: str | None,
        link: SfuLink,
        *,
        mesh_limit: int,
        max_members: int,
        check_seconds: float = 5.0,
    ) -> None:
        self.url = url
        self._secret = api_secret
        self._admin_key = admin_key
        self._link = link
        self._mesh_limit = mesh_limit
        self._max_members = max_members
        self._check_seconds = check_seconds
        self._api: JanusApi | None = None
        self._connecting = asyncio.Lock()
        self._control: tuple[int, int] | None = None  # session and handle for rooms
        self._rooms: dict[str, asyncio.Task[None]] = {}  # meeting -> its creation
        self._places: dict[str, _Place] = {}  # member id -> its place
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ MediaRouter

    @property
    def available(self) -> bool:
        return self._link.healthy is True

    @property
    def mesh_limit(self) -> int:
        return self._mesh_limit

    @property
    def max_members(self) -> int:
        return self._max_members

    def enter(self, meeting: str, member: Member) -> None:
        old = self._places.pop(member.id, None)
        if old is not None:
            self._forget(old)
        place = _Place(member, meeting)
        self._places[member.id] = place
        place.ready = self._spawn(self._open(place))

    def leave(self, meeting: str, member_id: str) -> None:
        place = self._places.get(member_id)
        if place is not None and place.meeting == meeting:
            del self._places[member_id]
            self._forget(place)

    def close(self, meeting: str) -> None:
        creating = self._rooms.pop(meeting, None)
        if creating is not None:
            self._spawn(self._destroy_room(meeting, creating))

    async def publish(self, member: Member, sdp: str, screen: str | None) -> str:
        place = await self._ready(member)
        assert place.session is not None
        assert place.publisher is not None
        body: dict[str, Any] = {"request": "configure"}
        if screen is not None:
            body["descriptions"] = [{"mid": screen, "description": "screen"}]
        api = await self._connected()
        try:
            _, jsep = await api.message(
                place.session, place.publisher, body, {"type": "offer", "sdp": sdp}
            )
        except JanusError as exc:
            raise SfuError(str(exc)) from None
        if jsep is None or jsep.get("type") != "answer" or not isinstance(jsep.get("sdp"), str):
            raise SfuError("the SFU's answer has no description")
        return str(jsep["sdp"])

    async def subscribe(self, member: Member, sdp: str) -> None:
        place = await self._ready(member)
        if place.subscriber is None or place.session is None:
            raise SfuError("no offer to answer")
        api = await self._connected()
        try:
            await api.message(
                place.session,
                place.subscriber,
                {"request": "start"},
                {"type": "answer", "sdp": sdp},
            )
        except JanusError as exc:
            raise SfuError(str(exc)) from None
        finally:
            place.answered.set()

    async def candidate(
        self, member: Member, pc: SfuConnection, candidate: IceCandidate | None
    ) -> None:
        place = await self._ready(member)
        handle = place.publisher if pc == "publisher" else place.subscriber
        if handle is None or place.session is None:
            return  # no offer yet on that connection: nothing to trickle into
        trickled = None
        if candidate is not None and candidate.candidate:
            trickled = candidate.model_dump(exclude_none=True, exclude={"usernameFragment"})
        api = await self._connected()
        try:
            await api.trickle(place.session, handle, trickled)
        except JanusError as exc:
            raise SfuError(str(exc)) from None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep_alive(), name="salon-sfu-keepalive")

    async def stop(self) -> None:
        """Close every session Salon holds on Janus, then the connection."""
        tasks = [self._keeper, *self._tasks]
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        if self._api is not None and not self._api.closed.is_set():
            for place in list(self._places.values()):
                if place.session is not None:
                    await self._quietly(self._api.destroy_session(place.session))
            if self._control is not None:
                await self._quietly(self._api.destroy_session(self._control[0]))
        self._places.clear()
        if self._api is not None:
            await self._api.close()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            api = self._api
            if api is None or api.closed.is_set():
                continue
            sessions = [p.session for p in self._places.values() if p.session is not None]
            if self._control is not None:
                sessions.append(self._control[0])
            for session in sessions:
                await self._quietly(
                    api.request({"janus": "keepalive", "session_id": session}, "ack")
                )

    async def _connected(self) -> JanusApi:
        """The connection to Janus, made again when it closed; :class:`SfuError` when Janus
        cannot be reached. Janus ends the sessions of a closed connection, so everything
        made on the old one is gone."""
        async with self._connecting:
            api = self._api
            if api is not None and not api.closed.is_set():
                return api
            if api is not None:  # lost: the rooms made on it are gone with it
                self._control = None
                self._rooms.clear()
            try:
                api = await JanusApi(self.url, self._secret).__aenter__()
                session = await api.create_session()
                self._control = (session, await api.attach(session, VIDEOROOM))
            except JanusError as exc:
                raise SfuError(f"cannot reach the SFU: {exc}") from None
            self._api = api
            return api

    # ------------------------------------------------------------------ rooms

    async def _room(self, meeting: str) -> None:
        """Create the meeting's VideoRoom room on Janus once (every member waits for it)."""
        creating = self._rooms.get(meeting)
        if creating is None or (creating.done() and creating.exception() is not None):
            creating = self._spawn(self._create_room(meeting))
            self._rooms[meeting] = creating
        await asyncio.shield(creating)

    async def _create_room(self, meeting: str) -> None:
        api = await self._connected()
        assert self._control is not None
        body = {
            "request": "create",
            "room": meeting,
            "admin_key": self._admin_key,
            "publishers": self._max_members,
            "is_private": True,
            "notify_joining": False,
        }
        if self._admin_key is None:
            del body["admin_key"]
        try:
            await api.message(*self._control, body)
        except JanusError as exc:
            raise SfuError(f"the SFU did not create the room: {exc}") from None

    async def _destroy_room(self, meeting: str, creating: asyncio.Task[None]) -> None:
        await asyncio.gather(creating, return_exceptions=True)
        api, control = self._api, self._control
        if api is None or api.closed.is_set() or control is None:
            return
        body = {"request": "destroy", "room": meeting, "admin_key": self._admin_key}
        await self._quietly(api.message(*control, body))

    # ------------------------------------------------------------------ a member's place

    async def _ready(self, member: Member) -> _Place:
        place = self._places.get(member.id)
        if place is None or place.ready is None:
            raise SfuError("you have no place on the SFU")
        try:
            await asyncio.shield(place.ready)
        except (SfuError, JanusError) as exc:
            raise SfuError(str(exc)) from None
        return place

    async def _open(self, place: _Place) -> None:
        """Make ``place``'s session and publisher, join the meeting's room as the member,
        and subscribe to whoever publishes there already."""
        await self._room(place.meeting)
        api = await self._connected()
        try:
            place.session = await api.create_session()
            place.publisher = await api.attach(place.session, VIDEOROOM)
            api.on_events(place.publisher, lambda event: self._publisher_event(place, event))
            join = {
                "request": "join",
                "ptype": "publisher",
                "room": place.meeting,
                "id": place.member.id,
                "display": place.member.name,
            }
            data, _ = await api.message(place.session, place.publisher, join)
        except JanusError as exc:
            log.warning("the SFU refused a place to %s: %s", place.member.id, exc)
            raise SfuError(str(exc)) from None
        feeds = _publishing(data.get("publishers"))
        if feeds:
            self._spawn(self._subscribe(place, feeds))

    def _forget(self, place: _Place) -> None:
        if place.ready is not None:
            place.ready.cancel()
        api = self._api
        if api is None:
            return
        for handle in (place.publisher, place.subscriber):
            if handle is not None:
                api.on_events(handle, None)
        if place.session is not None:
            self._spawn(self._quietly(api.destroy_session(place.session)))

    def _publisher_event(self, place: _Place, event: JanusEvent) -> None:
        data = _plugin_data(event)
        if self._places.get(place.member.id) is not place or data is None:
            return
        feeds = _publishing(data.get("publishers"))
        if feeds:
            self._spawn(self._subscribe(place, feeds))
        gone = data.get("unpublished") or data.get("leaving")
        if isinstance(gone, str):
            place.feeds.discard(gone)  # Janus renegotiates the subscriber itself

    def _subscriber_event(self, place: _Place, event: JanusEvent) -> None:
        data, jsep = _plugin_data(event), event.get("jsep")
        if self._places.get(place.member.id) is not place or data is None:
            return
        if isinstance(jsep, dict) and jsep.get("type") == "offer":
            self._offer(place, data, jsep)

    async def _subscribe(self, place: _Place, feeds: list[str]) -> None:
        """Subscribe ``place`` to ``feeds`` (those it has not yet, never its own)."""
        async with place.lock:
            try:
                async with asyncio.timeout(ANSWER_SECONDS):
                    await place.answered.wait()
            except TimeoutError:
                log.info("%s did not answer the SFU's offer; offering again", place.member.id)
            new = [f for f in feeds if f not in place.feeds and f != place.member.id]
            if not new or place.session is None:
                return
            api = await self._connected()
            try:
                await self._request_feeds(api, place, new)
            except JanusError as exc:
                if exc.code != NO_SUCH_FEED or len(new) == 1:
                    log.info("the SFU did not subscribe %s to %s: %s", place.member.id, new, exc)
                    return
                for feed in new:  # one left meanwhile: the others one by one
                    await self._quietly(self._request_feeds(api, place, [feed]))

    async def _request_feeds(self, api: JanusApi, place: _Place, feeds: list[str]) -> None:
        assert place.session is not None
        streams = [{"feed": feed} for feed in feeds]
        if place.subscriber is None:
            handle = await api.attach(place.session, VIDEOROOM)
            api.on_events(handle, lambda event: self._subscriber_event(place, event))
            join = {"request": "join", "ptype": "subscriber", "room": place.meeting}
            try:
                data, jsep = await api.message(place.session, handle, {**join, "streams": streams})
            except JanusError:
                api.on_events(handle, None)
                await self._quietly(
                    api.request(
                        {"janus": "detach", "session_id": place.session, "handle_id": handle}
                    )
                )
                raise
            place.subscriber = handle
            place.feeds.update(feeds)
            if jsep is not None:
                self._offer(place, data, jsep)
            return
        # The offer comes in the answer (``updated``), or later as an event while Janus waits
        # for an earlier renegotiation to end (``updating``; see _subscriber_event).
        subscribe = {"request": "subscribe", "streams": streams}
        data, jsep = await api.message(place.session, place.subscriber, subscribe)
        place.feeds.update(feeds)
        if jsep is not None:
            self._offer(place, data, jsep)

    def _offer(self, place: _Place, data: dict[str, Any], jsep: dict[str, Any]) -> None:
        sdp = jsep.get("sdp")
        if not isinstance(sdp, str):
            return
        place.answered.clear()
        offer = SfuOffer(
            description=SessionDescription(type="offer", sdp=sdp),
            streams=_streams(data.get("streams")),
        )
        place.member.push(Outgoing(offer))

    # ------------------------------------------------------------------ tasks

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None and not isinstance(error, (SfuError, JanusError)):
            log.error("an SFU task failed", exc_info=error)

    @staticmethod
    async def _quietly(work: Coroutine[Any, Any, Any]) -> None:
        try:
            await work
        except (JanusError, SfuError) as exc:
            log.info("the SFU refused: %s", exc)


def _plugin_data(event: JanusEvent) -> dict[str, Any] | None:
    plugindata = event.get("plugindata")
    data = plugindata.get("data") if isinstance(plugindata, dict) else None
    return data if isinstance(data, dict) else None


def _publishing(publishers: object) -> list[str]:
    """The ids of the publishers in Janus's ``publishers`` list that publish something."""
    if not isinstance(publishers, list):
        return []
    return [
        p["id"]
        for p in publishers
        if isinstance(p, dict) and isinstance(p.get("id"), str) and p.get("streams")
    ]


def _streams(streams: object) -> list[SfuStream]:
    """The m-lines of a subscriber offer that carry a member's media (Janus's ``streams``)."""
    if not isinstance(streams, list):
        return []
    out = []
    for s in streams:
        if not isinstance(s, dict) or not s.get("active", True):
            continue
        mid, feed, kind = s.get("mid"), s.get("feed_id"), s.get("type")
        if isinstance(mid, str) and isinstance(feed, str) and kind in ("audio", "video"):
            screen = s.get("feed_description") == "screen"
            out.append(SfuStream(mid=mid, member=feed, kind=kind, screen=screen))
    return out
