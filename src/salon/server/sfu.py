"""Rooms whose media goes through Janus's VideoRoom plugin (docs/SFU.md, PROTOCOL.md §3.10):
the :class:`~salon.core.sfu.MediaRouter` the rooms use when an SFU is configured.

For each meeting on the SFU, Janus has one VideoRoom room (its id: the meeting's id; created
with the ``admin_key`` only Salon holds, private, so nobody can list it). For each member,
Salon holds one Janus session with two handles (https://janus.conf.meetecho.com/docs/
videoroom.html): a *publisher* joined as the member's own id, which takes the member's
``sfu_publish`` offers (``configure``), and a multistream *subscriber*, which Salon subscribes
to every stream (publisher and ``mid``) of the other publishers as they appear, and whose offers
it relays to the member as ``sfu_offer``. The browser only ever exchanges media with Janus; the
API secret and the ``admin_key`` never leave this process, nor do Janus's own error texts.

One task keeps the connection to Janus: it connects, checks that Janus lets Salon create rooms
(a probe room, created and destroyed), and connects again whenever the connection closes.
Members' requests never wait for a connection: without one they fail at once
(``sfu_unavailable``), and once Janus answers again every member's place is opened anew and the
member told ``room_media`` (:meth:`JanusRouter._restore`).

Offers to a member's receiving connection are made one at a time: a new subscription waits
until the member answered the last offer (or :data:`ANSWER_SECONDS` passed). A stream that
a subscription on its way will take is not asked for again (a member whose offers go
unanswered would otherwise gather a waiting task per event about the others' streams).
A member's first subscription (a subscriber ``join`` on a new handle) that Janus does not answer
within its 5 s is given up with its handle, and asked for again after
:data:`SUBSCRIBE_RETRY_SECONDS`: without that, the member would never receive those already
there, while every connection it has looks well. A ``subscribe`` on the handle it has is not
asked for again: Janus takes a handle's requests in order, so it is only late, and its offer,
late too, reaches :meth:`JanusRouter._subscriber_event` (asked again, Janus would send each
stream twice).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, Final

from salon.core.member import Member
from salon.core.sfu import MAX_TRICKLED, SfuConnection, SfuError
from salon.protocol import Outgoing
from salon.protocol.messages import (
    IceCandidate,
    RoomMedia,
    SessionDescription,
    SfuOffer,
    SfuQualityLevel,
    SfuStream,
    Talking,
)
from salon.server.janus import JanusApi, JanusError, JanusEvent, JanusTimeout, SfuLink

log = logging.getLogger(__name__)

VIDEOROOM: Final = "janus.plugin.videoroom"
ANSWER_SECONDS: Final = 10.0
"""How long a new subscription waits for the member's answer to the previous offer."""
REOPEN_SECONDS: Final = 2.0
"""A place that failed to open is opened again at a member's request, at most this often."""
SUBSCRIBE_RETRY_SECONDS: Final = (1.0, 2.0, 4.0, 8.0)
"""The waits before a subscriber ``join`` Janus did not answer is made again (once after
each); then it is given up, and logged."""
STOP_SECONDS: Final = 5.0
"""How long stopping waits for Janus to close Salon's sessions and rooms."""
NO_SUCH_FEED: Final = 428  # JANUS_VIDEOROOM_ERROR_NO_SUCH_FEED: it left meanwhile
ROOM_EXISTS: Final = 427  # JANUS_VIDEOROOM_ERROR_ROOM_EXISTS: made on an earlier connection
SUBSTREAMS: Final[dict[SfuQualityLevel, int]] = {"low": 0, "medium": 1, "high": 2}
# Simulcast rids are listed lowest first in a client's offer (PROTOCOL.md §3.10); Janus takes
# them highest first unless told (its jsep's "rid_order").
OFFER_RIDS: Final = {"type": "offer", "rid_order": "lmh"}

Stream = tuple[str, str]  # a publisher's stream: (its member id, the mid in its offer)


@dataclass(eq=False)
class _Place:
    """One member's place on the SFU: its Janus session and handles."""

    member: Member
    room: str
    meeting: str
    generation: int  # the connection to Janus it was made on (see JanusRouter._restore)
    session: int | None = None
    publisher: int | None = None
    subscriber: int | None = None
    subscribed: set[Stream] = field(default_factory=set)
    pending: set[Stream] = field(default_factory=set)  # a subscription on its way takes them
    trickled: dict[str, int] = field(default_factory=dict)  # connection -> since its description
    streams: list[SfuStream] = field(default_factory=list)  # of the latest offer
    levels: dict[str, SfuQualityLevel] = field(default_factory=dict)  # publisher -> layer
    answered: asyncio.Event = field(default_factory=asyncio.Event)  # no offer pending
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)  # one subscription at a time
    ready: asyncio.Task[None] | None = None  # the session, joined as a publisher
    opened: float = 0.0  # monotonic seconds: when opening it last started
    tasks: set[asyncio.Task[Any]] = field(default_factory=set)  # its subscriptions under way
    offer: Outgoing | None = None  # the latest sfu_offer sent

    def __post_init__(self) -> None:
        self.answered.set()


class JanusRouter:
    """The rooms' :class:`~salon.core.sfu.MediaRouter` on a Janus at ``url``. ``available``
    while ``link`` (the keepalive of ``GET /api/v1/health``) says Janus answers and this
    router holds a connection on which Janus lets it create rooms. One WebSocket to Janus
    carries every member's requests; every Janus session Salon holds is kept alive on it
    every ``check_seconds``."""

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
        self._control: tuple[int, int] | None = None  # session and handle for rooms
        self._rooms: dict[str, asyncio.Task[None]] = {}  # meeting -> its creation
        self._places: dict[str, _Place] = {}  # member id -> its place
        self._tasks: set[asyncio.Task[Any]] = set()
        self._keeper: asyncio.Task[None] | None = None
        self._connector: asyncio.Task[None] | None = None
        self._generation = 0  # connections to Janus made so far
        self._stopping = False
        # Janus answers but refused what Salon needs (a session, or a room: a wrong
        # admin_key), when the last attempt to connect failed so.
        self.refused = False

    # ------------------------------------------------------------------ MediaRouter

    @property
    def available(self) -> bool:
        return self._link.healthy is True and self._connected() is not None

    @property
    def mesh_limit(self) -> int:
        return self._mesh_limit

    @property
    def max_members(self) -> int:
        return self._max_members

    def enter(self, room: str, meeting: str, member: Member) -> None:
        old = self._places.pop(member.id, None)
        if old is not None:
            self._forget(old)
        place = _Place(member, room, meeting, self._generation)
        self._places[member.id] = place
        self._open_soon(place)

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
        api = self._api_now()
        try:
            _, jsep = await api.message(
                place.session, place.publisher, body, {**OFFER_RIDS, "sdp": sdp}
            )
        except JanusError as exc:
            raise _refused("the offer", member, exc) from None
        if jsep is None or jsep.get("type") != "answer" or not isinstance(jsep.get("sdp"), str):
            raise _refused("the offer", member, "its answer has no description")
        place.trickled.pop("publisher", None)
        return str(jsep["sdp"])

    async def subscribe(self, member: Member, sdp: str) -> None:
        place = await self._ready(member)
        if place.subscriber is None or place.session is None:
            raise SfuError("there is no offer to answer")
        api = self._api_now()
        try:
            await api.message(
                place.session,
                place.subscriber,
                {"request": "start"},
                {"type": "answer", "sdp": sdp},
            )
        except JanusError as exc:
            raise _refused("the answer", member, exc) from None
        finally:
            place.answered.set()
        place.trickled.pop("subscriber", None)
        if place.levels:  # the layers asked for apply to the streams of this offer too
            try:
                await self._configure_layers(api, place, place.levels)
            except JanusError as exc:
                log.info("the SFU kept the layers of %s: %s", member.id, exc)

    async def candidate(
        self, member: Member, pc: SfuConnection, candidate: IceCandidate | None
    ) -> bool:
        place = await self._ready(member)
        handle = place.publisher if pc == "publisher" else place.subscriber
        if handle is None or place.session is None:
            return True  # no offer yet on that connection: nothing to trickle into
        trickled = place.trickled.get(pc, 0)
        if trickled >= MAX_TRICKLED:
            return False
        place.trickled[pc] = trickled + 1
        sent = None
        if candidate is not None and candidate.candidate:
            sent = candidate.model_dump(exclude_none=True, exclude={"usernameFragment"})
        try:
            await self._api_now().trickle(place.session, handle, sent)
        except JanusError as exc:
            raise _refused("the candidate", member, exc) from None
        return True

    def resumed(self, member: Member) -> None:
        place = self._places.get(member.id)
        if place is not None and place.offer is not None and not place.answered.is_set():
            member.push(place.offer)

    async def quality(self, member: Member, publisher: str, level: SfuQualityLevel) -> None:
        place = await self._ready(member)
        if place.subscriber is not None:
            try:
                await self._configure_layers(self._api_now(), place, {publisher: level})
            except JanusError as exc:
                raise _refused("the layer", member, exc) from None
        if level == "high":  # what Janus sends by default
            place.levels.pop(publisher, None)
        else:
            place.levels[publisher] = level

    async def _configure_layers(
        self, api: JanusApi, place: _Place, levels: dict[str, SfuQualityLevel]
    ) -> None:
        """Ask Janus for the simulcast ``substream`` of each publisher's video in ``levels``
        (0 low, 1 medium, 2 high; Janus forwards the nearest one a publisher sends) on
        ``place``'s subscriber."""
        streams = [
            {"mid": s.mid, "substream": SUBSTREAMS[levels[s.member]]}
            for s in place.streams
            if s.kind == "video" and s.member in levels
        ]
        if not streams or place.session is None or place.subscriber is None:
            return
        body = {"request": "configure", "streams": streams}
        await api.message(place.session, place.subscriber, body)

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._keeper = asyncio.create_task(self._keep_alive(), name="salon-sfu-keepalive")
        self._connector = asyncio.create_task(self._keep_connected(), name="salon-sfu-connect")

    async def stop(self) -> None:
        """Close every session and room Salon holds on Janus (for at most 5 s all together),
        then the connection."""
        self._stopping = True
        tasks = [self._keeper, self._connector, *self._tasks]
        for place in self._places.values():
            tasks.extend(place.tasks)
        for task in tasks:
            if task is not None:
                task.cancel()
        await asyncio.gather(*(t for t in tasks if t is not None), return_exceptions=True)
        api, control = self._connected(), self._control
        if api is not None:
            work: list[Coroutine[Any, Any, Any]] = [
                api.destroy_session(p.session) for p in self._places.values() if p.session
            ]
            if control is not None:
                body = {"request": "destroy", "admin_key": self._admin_key}
                work += [api.message(*control, {**body, "room": m}) for m in self._rooms]
                work.append(api.destroy_session(control[0]))
            try:
                async with asyncio.timeout(STOP_SECONDS):
                    await asyncio.gather(*work, return_exceptions=True)
            except TimeoutError:
                log.warning("the SFU did not close Salon's sessions in %.0f s", STOP_SECONDS)
        self._places.clear()
        if self._api is not None:
            await self._api.close()

    async def _keep_alive(self) -> None:
        while True:
            await asyncio.sleep(self._check_seconds)
            api = self._connected()
            if api is None:
                continue
            sessions = [p.session for p in self._places.values() if p.session is not None]
            if self._control is not None:
                sessions.append(self._control[0])
            await asyncio.gather(
                *(
                    self._quietly(api.request({"janus": "keepalive", "session_id": s}, "ack"))
                    for s in sessions
                )
            )

    def _connected(self) -> JanusApi | None:
        api = self._api
        return api if api is not None and not api.closed.is_set() else None

    def _api_now(self) -> JanusApi:
        """The connection to Janus, or :class:`SfuError` at once when there is none (the
        connector is making one: members never wait for it)."""
        api = self._connected()
        if api is None:
            raise SfuError("the SFU is not reachable")
        return api

    async def _keep_connected(self) -> None:
        """Connect to Janus; when the connection closes (Janus stopped, crashed or
        restarted), connect again every ``check_seconds`` until it answers."""
        failing = False
        while True:
            try:
                api = await self._connect()
            except SfuError as exc:
                if not failing:
                    log.warning("Salon cannot use the SFU at %s: %s", self.url, exc)
                failing = True
                await asyncio.sleep(self._check_seconds)
                continue
            if failing:
                log.info("Salon uses the SFU at %s again", self.url)
            failing = self.refused = False
            await api.closed.wait()
            if self._stopping:
                return
            log.warning(
                "the connection to the SFU closed: its rooms have no media until it answers"
            )

    async def _connect(self) -> JanusApi:
        """A new connection to Janus, on which Janus lets Salon create rooms (a probe room,
        created and destroyed: a wrong ``admin_key`` shows here, before any room moves);
        then every member's place is opened again on it."""
        api = JanusApi(self.url, self._secret)
        try:
            await api.__aenter__()
            session = await api.create_session()
            control = (session, await api.attach(session, VIDEOROOM))
            probe = f"salon-probe-{secrets.token_hex(8)}"
            await api.message(*control, self._room_body(probe))
            await api.message(
                *control, {"request": "destroy", "room": probe, "admin_key": self._admin_key}
            )
        except JanusError as exc:
            await api.close()
            self.refused = exc.code != 0  # an answer, not silence: the settings are wrong
            raise SfuError(str(exc)) from None
        except BaseException:
            await api.close()
            raise
        self._api, self._control = api, control
        self._generation += 1
        self._rooms.clear()  # made on an earlier connection: Janus may still have them (427)
        self._restore()
        return api

    def _restore(self) -> None:
        """A new connection to Janus, whose sessions of the old one are gone: open each
        member's place again, and tell it ``room_media`` so that it publishes and
        subscribes anew."""
        stale = [p for p in self._places.values() if p.generation < self._generation]
        for old in stale:
            self._forget(old, destroy=False)
            place = _Place(old.member, old.room, old.meeting, self._generation)
            place.levels = old.levels
            self._places[old.member.id] = place
            place.member.push(Outgoing(RoomMedia(room=place.room, sfu=True)))
            self._open_soon(place)
        if stale:
            log.info("the SFU answers again: %d members publish anew", len(stale))

    # ------------------------------------------------------------------ rooms

    def _room_body(self, room: str) -> dict[str, Any]:
        body = {
            "request": "create",
            "room": room,
            "admin_key": self._admin_key,
            # The most publishers Janus lets in: as many as the rooms let in.
            "publishers": self._max_members,
            "is_private": True,
            "notify_joining": False,
            # Talk events (RFC 6464 levels): "talking" after 1 s (50 packets of 20 ms) louder
            # than -25 dBov on average, "stopped-talking" after 1 s quieter.
            "audiolevel_event": True,
            "audio_active_packets": 50,
        }
        if self._admin_key is None:
            del body["admin_key"]
        return body

    async def _room(self, meeting: str) -> None:
        """Create the meeting's VideoRoom room on Janus once (every member waits for it)."""
        creating = self._rooms.get(meeting)
        if creating is None or (creating.done() and creating.exception() is not None):
            creating = self._spawn(self._create_room(meeting))
            self._rooms[meeting] = creating
        await asyncio.shield(creating)

    async def _create_room(self, meeting: str) -> None:
        api, control = self._api_now(), self._control
        assert control is not None
        try:
            await api.message(*control, self._room_body(meeting))
        except JanusError as exc:
            if exc.code != ROOM_EXISTS:  # made on an earlier connection to this Janus
                log.warning("the SFU did not create the room of meeting %s: %s", meeting, exc)
                raise SfuError("the SFU did not create the room") from None

    async def _destroy_room(self, meeting: str, creating: asyncio.Task[None]) -> None:
        await asyncio.gather(creating, return_exceptions=True)
        api, control = self._connected(), self._control
        if api is None or control is None:
            return
        body = {"request": "destroy", "room": meeting, "admin_key": self._admin_key}
        await self._quietly(api.message(*control, body))

    # ------------------------------------------------------------------ a member's place

    def _open_soon(self, place: _Place) -> None:
        place.opened = time.monotonic()
        place.ready = self._spawn(self._open(place))

    async def _ready(self, member: Member) -> _Place:
        """``member``'s place, once open; a place that failed to open (Janus refused or was
        unreachable) is opened again, at most every :data:`REOPEN_SECONDS`."""
        place = self._places.get(member.id)
        if place is None or place.ready is None:
            raise SfuError("you have no place on the SFU")
        failed = place.ready.done() and (
            place.ready.cancelled() or place.ready.exception() is not None
        )
        if failed and time.monotonic() - place.opened >= REOPEN_SECONDS:
            self._forget(place, cancel=False)
            place.session = place.publisher = place.subscriber = None
            place.subscribed.clear()
            place.pending.clear()
            place.trickled.clear()
            self._open_soon(place)
        assert place.ready is not None
        try:
            await asyncio.shield(place.ready)
        except (SfuError, JanusError):
            raise SfuError("the SFU is not ready for you; try again") from None
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # this request itself is cancelled
            raise SfuError("your place on the SFU was closed") from None
        if self._places.get(member.id) is not place:
            raise SfuError("your place on the SFU was closed")
        return place

    async def _open(self, place: _Place) -> None:
        """Make ``place``'s session and publisher, join the meeting's room as the member,
        and subscribe to whatever publishes there already."""
        await self._room(place.meeting)
        api = self._api_now()
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
            raise SfuError("the SFU refused a place") from None
        streams, _ = _published(data.get("publishers"))
        self._want(place, streams)

    def _forget(self, place: _Place, *, cancel: bool = True, destroy: bool = True) -> None:
        """Stop everything of ``place`` (its subscriptions under way, and its opening when
        ``cancel``) and close its session on Janus (``destroy``)."""
        if cancel and place.ready is not None:
            place.ready.cancel()
        for task in place.tasks:
            task.cancel()
        place.answered.set()  # nothing waits for an answer any more
        api = self._connected()
        if api is None:
            return
        for handle in (place.publisher, place.subscriber):
            if handle is not None:
                api.on_events(handle, None)
        if destroy and place.session is not None:
            self._spawn(self._quietly(api.destroy_session(place.session)))

    def _current(self, place: _Place) -> bool:
        return self._places.get(place.member.id) is place

    def _publisher_event(self, place: _Place, event: JanusEvent) -> None:
        data = _plugin_data(event)
        if not self._current(place) or data is None:
            return
        streams, disabled = _published(data.get("publishers"))
        place.subscribed -= disabled  # Janus closed those: a later share is a new stream
        place.pending -= disabled  # nor does a subscription waiting to try again ask for them
        self._want(place, streams)
        gone = data.get("unpublished") or data.get("leaving")
        if isinstance(gone, str):  # Janus renegotiates the subscriber itself
            place.subscribed = {s for s in place.subscribed if s[0] != gone}
            place.pending = {s for s in place.pending if s[0] != gone}
            place.levels.pop(gone, None)
        talker = data.get("id")
        if data.get("videoroom") in ("talking", "stopped-talking") and isinstance(talker, str):
            talking = data["videoroom"] == "talking"
            place.member.push(Outgoing(Talking(room=place.room, member=talker, talking=talking)))

    def _subscriber_event(self, place: _Place, event: JanusEvent) -> None:
        data, jsep = _plugin_data(event), event.get("jsep")
        if data is not None and isinstance(jsep, dict) and jsep.get("type") == "offer":
            self._offer(place, data, jsep)

    def _want(self, place: _Place, streams: list[Stream]) -> None:
        """Have ``place`` subscribed to those of ``streams`` it has not yet and no
        subscription on its way takes (never its own)."""
        known = place.subscribed | place.pending
        new = [s for s in streams if s not in known and s[0] != place.member.id]
        if new:
            place.pending.update(new)
            self._spawn_for(place, self._subscribe(place, new))

    async def _subscribe(self, place: _Place, streams: list[Stream]) -> None:
        """Subscribe ``place`` to ``streams`` (those it has not yet); a subscriber ``join``
        Janus does not answer is made again after each :data:`SUBSCRIBE_RETRY_SECONDS`, for
        the streams still published. They are no longer pending once it is done, whatever
        came of it."""
        try:
            left = streams
            for wait in (*SUBSCRIBE_RETRY_SECONDS, None):
                left = await self._subscribe_now(place, left)
                if not left:
                    return
                if wait is None:
                    log.warning("the SFU never answered %s's subscriber join", place.member.id)
                    return
                await asyncio.sleep(wait)
                left = [s for s in left if s in place.pending]  # unpublished meanwhile
        finally:
            place.pending.difference_update(streams)

    async def _subscribe_now(self, place: _Place, streams: list[Stream]) -> list[Stream]:
        """One try at subscribing ``place`` to those of ``streams`` it has not yet. Returns
        those whose subscriber ``join`` Janus did not answer (to make again), or none."""
        async with place.lock:
            try:
                async with asyncio.timeout(ANSWER_SECONDS):
                    await place.answered.wait()
            except TimeoutError:
                log.info("%s did not answer the SFU's offer; offering again", place.member.id)
            new = [s for s in streams if s not in place.subscribed]
            if not new or place.session is None or not self._current(place):
                return []
            api = self._api_now()
            try:
                await self._subscribe_once(api, place, new)
            except _JoinUnanswered:
                return new
            except JanusError as exc:
                if exc.code != NO_SUCH_FEED or len({s[0] for s in new}) == 1:
                    log.info("the SFU did not subscribe %s to %s: %s", place.member.id, new, exc)
                    return []
                again: list[Stream] = []
                for feed in {s[0] for s in new}:  # one left meanwhile: the others one by one
                    mine = [s for s in new if s[0] == feed]
                    try:
                        await self._subscribe_once(api, place, mine)
                    except _JoinUnanswered:
                        again += mine
                    except JanusError as refused:
                        log.info("the SFU refused: %s", refused)
                return again
            return []

    async def _subscribe_once(self, api: JanusApi, place: _Place, new: list[Stream]) -> None:
        """:meth:`_request_streams`; a ``subscribe`` Janus answers late counts as made (its
        offer comes as an event); a ``join`` it does not answer is :class:`_JoinUnanswered`."""
        try:
            await self._request_streams(api, place, new)
        except JanusTimeout as exc:
            if place.subscriber is None:
                raise _JoinUnanswered from None
            log.info("the SFU answers %s's subscription late: %s", place.member.id, exc)
            place.subscribed.update(new)

    async def _request_streams(self, api: JanusApi, place: _Place, new: list[Stream]) -> None:
        assert place.session is not None
        streams = [{"feed": feed, "mid": mid} for feed, mid in new]
        if place.subscriber is None:
            handle = await api.attach(place.session, VIDEOROOM)
            api.on_events(handle, lambda event: self._subscriber_event(place, event))
            join = {"request": "join", "ptype": "subscriber", "room": place.meeting}
            try:
                data, jsep = await api.message(place.session, handle, {**join, "streams": streams})
            except BaseException:  # refused, or cancelled (the place is forgotten): let it go
                api.on_events(handle, None)
                detach = {"janus": "detach", "session_id": place.session, "handle_id": handle}
                self._spawn(self._quietly(api.request(detach)))
                raise
            place.subscriber = handle
        else:
            # The offer comes in the answer (``updated``), or later as an event while Janus
            # waits for an earlier renegotiation to end (``updating``; see _subscriber_event).
            subscribe = {"request": "subscribe", "streams": streams}
            data, jsep = await api.message(place.session, place.subscriber, subscribe)
        place.subscribed.update(new)
        if jsep is not None:
            self._offer(place, data, jsep)

    def _offer(self, place: _Place, data: dict[str, Any], jsep: dict[str, Any]) -> None:
        sdp = jsep.get("sdp")
        if not isinstance(sdp, str) or not self._current(place):
            return  # it left (or moved) meanwhile: the offer is for nobody
        place.answered.clear()
        place.streams = _streams(data.get("streams"))
        offer = SfuOffer(
            description=SessionDescription(type="offer", sdp=sdp), streams=place.streams
        )
        place.offer = Outgoing(offer)
        place.member.push(place.offer)

    # ------------------------------------------------------------------ tasks

    def _spawn(self, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _spawn_for(self, place: _Place, work: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task of ``place``'s: cancelled when the place is forgotten."""
        task = self._spawn(work)
        place.tasks.add(task)
        task.add_done_callback(place.tasks.discard)
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


class _JoinUnanswered(Exception):
    """Janus did not answer a subscriber ``join`` in time; its handle is detached."""


def _refused(what: str, member: Member, why: object) -> SfuError:
    """What a member is told when Janus refused its request: never Janus's own text (it may
    name internal addresses); the log has it."""
    log.info("the SFU refused %s of %s: %s", what, member.id, why)
    return SfuError(f"the SFU refused {what}")


def _plugin_data(event: JanusEvent) -> dict[str, Any] | None:
    plugindata = event.get("plugindata")
    data = plugindata.get("data") if isinstance(plugindata, dict) else None
    return data if isinstance(data, dict) else None


def _published(publishers: object) -> tuple[list[Stream], set[Stream]]:
    """The audio and video streams in Janus's ``publishers`` list: those sent, and those
    the publisher stopped (``disabled``)."""
    sent: list[Stream] = []
    disabled: set[Stream] = set()
    if not isinstance(publishers, list):
        return sent, disabled
    for p in publishers:
        feed = p.get("id") if isinstance(p, dict) else None
        streams = p.get("streams") if isinstance(p, dict) else None
        if not isinstance(feed, str) or not isinstance(streams, list):
            continue
        for s in streams:
            mid = s.get("mid") if isinstance(s, dict) else None
            if not isinstance(mid, str) or s.get("type") not in ("audio", "video"):
                continue
            if s.get("disabled"):
                disabled.add((feed, mid))
            else:
                sent.append((feed, mid))
    return sent, disabled


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
