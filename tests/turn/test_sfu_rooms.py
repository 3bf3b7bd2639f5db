"""Rooms whose media goes through Janus (issue #13; docs/PROTOCOL.md §3.10), proven with the
real ``janus`` and members that publish with aiortc through Salon's signaling: a mesh room
moves to the SFU when its next member would pass the mesh limit, and then everyone decodes
everyone through Janus, each sending its media once."""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError, VideoStreamTrack
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from salon.client import Client, Remote, ServerError
from salon.core.rooms import SFU_PUBLISH_BURST
from salon.core.sfu import MAX_TRICKLED
from salon.protocol.messages import MemberLeft, RoomMedia
from salon.server.janus import REQUEST_SECONDS, SUBPROTOCOL, JanusApi, JanusProcess, start_janus
from salon.store.apikeys import SqlApiKeyRepository
from salon.store.database import open_database
from tests.integration.server import RunningServer, running_server
from tests.turn.conftest import running_janus
from tests.turn.sfu_member import SfuMember, ToneTrack

MESH_LIMIT = 2


def _sfu_health(server: RunningServer) -> str:
    with urllib.request.urlopen(f"{server.base_url}/api/v1/health", timeout=2) as answer:
        return str(json.load(answer)["sfu"])


def _serve(tmp_path: Path, url: str, **options: Any) -> AbstractContextManager[RunningServer]:
    options = {"sfu_url": url, "sfu_mesh_limit": MESH_LIMIT, "sfu_check_seconds": 0.5} | options
    return running_server(tmp_path, http=True, options=options)


async def _until_health(server: RunningServer, state: str) -> None:
    deadline = time.monotonic() + 15
    while await asyncio.to_thread(_sfu_health, server) != state:
        assert time.monotonic() < deadline, f"the server's SFU never became {state}"
        await asyncio.sleep(0.05)


@pytest.fixture
async def sfu_server(tmp_path: Path, janus: JanusProcess) -> AsyncIterator[RunningServer]:
    secrets = {"sfu_api_secret": janus.config.api_secret, "sfu_admin_key": janus.config.admin_key}
    with _serve(tmp_path, janus.config.url, **secrets) as server:
        await _until_health(server, "ok")  # rooms move to the SFU only while it answers
        yield server


@pytest.fixture
async def members(sfu_server: RunningServer) -> AsyncIterator[Callable[..., Any]]:
    made: list[SfuMember] = []

    async def make(name: str, version: int = 3) -> SfuMember:
        member = await SfuMember.greeted(sfu_server.ws_url, name, version)
        made.append(member)
        return member

    yield make
    for member in made:
        await member.close()


async def _janus_rooms(janus: JanusProcess) -> dict[str, int]:
    """Every VideoRoom room on Janus (private ones too: Salon's admin_key lists them), with
    how many take part in it."""
    config = janus.config
    async with JanusApi(config.url, config.api_secret) as api:
        session = await api.create_session()
        handle = await api.attach(session, "janus.plugin.videoroom")
        listed, _ = await api.message(
            session, handle, {"request": "list", "admin_key": config.admin_key}
        )
        rooms = {r["room"]: r["num_participants"] for r in listed["list"]}
        await api.destroy_session(session)
    return rooms


async def test_a_room_past_the_mesh_limit_moves_to_the_sfu_and_everyone_decodes_everyone(
    members: Callable[..., Any], janus: JanusProcess
) -> None:
    alice, bob, carol = [await members(n) for n in ("alice", "bob", "carol")]
    assert (await alice.join("big"))["sfu"] is False
    assert (await bob.join("big"))["sfu"] is False  # two: still a mesh
    joined = await carol.join("big")  # the third passes the mesh limit of 2
    assert joined["sfu"] is True
    for member in (alice, bob):
        moved = await member.expect("room_media")
        assert moved == {"type": "room_media", "room": "big", "sfu": True}
    for member in (alice, bob, carol):
        await member.publish()
    everyone = [alice, bob, carol]
    for member in everyone:
        others = [m for m in everyone if m is not member]
        await member.decoding(others)
        assert {s["member"] for s in member.streams.values()} == {m.id for m in others}
        assert sorted(s["kind"] for s in member.streams.values()) == ["audio"] * 2 + ["video"] * 2
    # No message a member received names Janus's secrets.
    for member in everyone:
        frames = json.dumps(member.received)
        assert janus.config.api_secret not in frames
        assert janus.config.admin_key not in frames


async def _answers(member: SfuMember, refs: list[Any]) -> dict[Any, str | None]:
    """The error code each of ``refs`` got (None: no error); the last of them must get one."""
    got: dict[Any, str | None] = dict.fromkeys(refs)
    while True:
        message = await asyncio.wait_for(member.messages.get(), 15)
        if message["type"] == "error":
            assert message.get("ref") in got, message
            got[message["ref"]] = message["code"]
            if message["ref"] == refs[-1]:
                return got


async def test_what_a_member_relays_to_janus_is_bounded_in_size_and_number(
    members: Callable[..., Any],
) -> None:
    """What goes to Janus has the bounds of what goes to members (``max_sdp_chars``,
    ``max_candidate_chars``), and a number bound too: candidates per description of a
    connection (Janus queues those that come before its ICE starts without a bound), and
    offers (each that adds or drops a stream costs every other member a renegotiation)."""
    alice, bob, carol = [await members(n) for n in ("alice", "bob", "carol")]
    joined = [await member.join("bounds") for member in (alice, bob, carol)]
    assert [j["sfu"] for j in joined] == [False, False, True]
    for member in (alice, bob):
        await member.expect("room_media")
    candidate = {
        "candidate": "candidate:1 1 udp 2122260223 192.0.2.10 51000 typ host",
        "sdpMid": "0",
    }
    refs: list[Any] = [*range(MAX_TRICKLED), "one more", "long", "long sdp"]
    for ref in refs[:-3]:
        await carol.send(type="sfu_candidate", pc="publisher", candidate=candidate, ref=ref)
    await carol.send(type="sfu_candidate", pc="publisher", candidate=candidate, ref="one more")
    long = {**candidate, "candidate": "c" * 1025}
    await carol.send(type="sfu_candidate", pc="subscriber", candidate=long, ref="long")
    offer = {"type": "offer", "sdp": "v=0\r\n" + "a=x\r\n" * 7000}
    await carol.send(type="sfu_publish", description=offer, ref="long sdp")
    got = await _answers(carol, refs)
    assert [got[ref] for ref in refs[:-3]] == [None] * MAX_TRICKLED
    assert got["one more"] == "rate_limited"
    assert (got["long"], got["long sdp"]) == ("bad_message", "bad_message")
    # An offer that Janus takes starts the count again for that connection.
    await carol.publish()
    await carol.send(type="sfu_candidate", pc="publisher", candidate=candidate, ref="again")
    await carol.send(type="sfu_candidate", pc="nowhere", candidate=candidate, ref="end")
    assert await _answers(carol, ["again", "end"]) == {"again": None, "end": "bad_message"}
    # Offers: SFU_PUBLISH_BURST at once, then no more than SFU_PUBLISHES_PER_MINUTE.
    bogus = {"type": "offer", "sdp": "v=0\r\n"}
    offers = [f"offer {n}" for n in range(SFU_PUBLISH_BURST + 2)]
    for ref in offers:
        await bob.send(type="sfu_publish", description=bogus, ref=ref)
    got = await _answers(bob, offers)
    assert {got[ref] for ref in offers[:SFU_PUBLISH_BURST]} == {"sfu_unavailable"}
    assert got[offers[-1]] == "rate_limited"


async def test_who_leaves_is_gone_from_the_others_offers_and_the_last_one_out_ends_the_room(
    members: Callable[..., Any], janus: JanusProcess
) -> None:
    before = await _janus_rooms(janus)
    alice, bob, carol = [await members(n) for n in ("alice", "bob", "carol")]
    for member in (alice, bob, carol):
        await member.join("leaving")
    for member in (alice, bob, carol):
        await member.publish()
    await alice.decoding([bob, carol])
    ours = {room: n for room, n in (await _janus_rooms(janus)).items() if room not in before}
    assert list(ours.values()) == [3]  # one Janus room for the meeting, three in it
    offers = alice.offers
    await bob.send(type="leave")
    await bob.expect("left")
    await alice.expect("member_left")
    await carol.decoding([alice])
    await alice.offered(offers)  # Janus renegotiates the others' receiving connections
    assert {s["member"] for s in alice.streams.values()} == {carol.id}
    room = next(iter(ours))
    await _until(janus, lambda rooms: rooms.get(room) == 2, "bob's place on Janus closed")
    for member in (alice, carol):
        await member.send(type="leave")
        await member.expect("left")
    # The meeting ended: its room on Janus too.
    await _until(janus, lambda rooms: room not in rooms, "the meeting's room on Janus closed")


async def _until(janus: JanusProcess, check: Callable[[dict[str, int]], bool], what: str) -> None:
    deadline = time.monotonic() + 10
    while not check(await _janus_rooms(janus)):
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.1)


async def test_janus_says_who_talks_and_a_muted_microphone_stops_talking(
    members: Callable[..., Any],
) -> None:
    alice, bob, carol = [await members(n) for n in ("alice", "bob", "carol")]
    for member in (alice, bob, carol):
        await member.join("talk")
    await alice.publish(tone=True)  # a 440 Hz tone: Janus hears her talk
    await bob.publish()  # silence
    await carol.publish()
    for member in (alice, bob, carol):
        talking = await member.expect("talking")
        assert (talking["member"], talking["talking"], talking["room"]) == (alice.id, True, "talk")
    await alice.send(type="media", mic=False, camera=True, screen=False)
    for member in (bob, carol):
        quiet = await member.expect("talking")
        assert (quiet["member"], quiet["talking"]) == (alice.id, False)
    assert not any(
        m["type"] == "talking" and m["member"] == bob.id for m in bob.received + carol.received
    )


async def test_a_janus_restart_mid_call_brings_everyone_back_by_itself(
    tmp_path: Path,
) -> None:
    """Janus killed and started again with the same configuration: Salon notices the lost
    connection, connects again when Janus answers, and tells every member ``room_media``; they
    publish anew and decode each other again, with nobody pressing anything."""
    with running_janus(tmp_path / "janus") as janus:
        config = janus.config
        secrets = {"sfu_api_secret": config.api_secret, "sfu_admin_key": config.admin_key}
        with _serve(tmp_path / "salon", config.url, **secrets) as server:
            await _until_health(server, "ok")
            people = [await SfuMember.greeted(server.ws_url, n) for n in ("ann", "ben", "cat")]
            try:
                for member in people:
                    await member.join("restart")
                for member in people[:2]:
                    await member.expect("room_media")  # the move to the SFU
                for member in people:
                    await member.publish()
                for member in people:
                    await member.decoding([m for m in people if m is not member])
                janus.process.kill()
                janus.process.wait()
                await _until_health(server, "unreachable")
                janus.process = start_janus(config, janus.folder).process
                for member in people:
                    moved = await member.expect("room_media", timeout=30)
                    assert moved["sfu"] is True
                    await member.publish()
                for member in people:
                    await member.decoding([m for m in people if m is not member])
            finally:
                for member in people:
                    await member.close()


async def test_a_meeting_created_large_is_on_janus_from_its_first_member(
    sfu_server: RunningServer, members: Callable[..., Any]
) -> None:
    engine = await open_database(sfu_server.settings.sqlalchemy_url())
    try:
        made = await SqlApiKeyRepository(engine).create("tests", (), int(time.time() * 1000))
    finally:
        await engine.dispose()
    headers = {"Authorization": f"Bearer {made.token}"}
    async with httpx.AsyncClient(base_url=sfu_server.base_url, headers=headers) as api:
        answer = await api.post("/api/v1/meetings", json={"mode": "large"})
        assert answer.status_code == 201, answer.text
        created = answer.json()
        assert created["mode"] == "large"
        mesh = (await api.post("/api/v1/meetings", json={})).json()
    alice, bob = await members("alice"), await members("bob")
    assert (await alice.join(created["id"]))["sfu"] is True  # alone, and already on Janus
    assert (await bob.join(created["id"]))["sfu"] is True
    await alice.publish()
    await bob.publish()
    await alice.decoding([bob])
    await bob.decoding([alice])
    carol, dave = await members("carol"), await members("dave")
    assert (await carol.join(mesh["id"]))["sfu"] is False  # a mesh meeting: below the limit
    assert (await dave.join(mesh["id"]))["sfu"] is False


class Received:
    """What an SDK client receives: video frames per member, the remotes closed."""

    def __init__(self, client: Client) -> None:
        self.frames: Counter[str] = Counter()
        self.closed: list[str] = []
        self.kinds: list[tuple[str, str]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._frame = asyncio.Condition()  # notified at every video frame
        client.on_track(self._track)
        client.on_peer_closed(lambda remote: self.closed.append(remote.id))

    def _track(self, remote: Remote, track: MediaStreamTrack) -> None:
        self.kinds.append((remote.id, track.kind))
        task = asyncio.create_task(self._count(remote.id, track))
        self._tasks.add(task)

    async def _count(self, member: str, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                if track.kind == "video":
                    self.frames[member] += 1
                    async with self._frame:
                        self._frame.notify_all()

    async def decoding(self, ids: list[str]) -> None:
        """Wait (at most 20 s) until more than 5 new frames came from each of ``ids``."""
        before = {i: self.frames[i] for i in ids}
        try:
            async with asyncio.timeout(20), self._frame:
                await self._frame.wait_for(lambda: all(self.frames[i] > before[i] + 5 for i in ids))
        except TimeoutError:
            raise AssertionError(f"decoding {dict(self.frames)}, not all {ids}") from None

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


async def test_the_sdk_moves_to_the_sfu_with_its_room_sends_once_and_receives_everyone(
    sfu_server: RunningServer, members: Callable[..., Any]
) -> None:
    """A Python program on the SDK (``Client(..., sfu=True)``, protocol v3) in a mesh room
    that moves to the SFU: its mesh peer closes, it publishes its tracks once, the others
    decode it, and it decodes them through one receiving connection; a member who leaves
    is closed for it. A client without ``sfu`` is refused a room on the SFU."""
    alice, carol = await members("alice"), await members("carol")
    await alice.join("sdk")
    bot = Client(sfu_server.base_url, "bot", sfu=True)
    received = Received(bot)
    bot.add_track(VideoStreamTrack())
    bot.add_track(ToneTrack())
    await bot.connect()
    try:
        assert bot.version == 3
        assert (await bot.join("sdk")).sfu is False  # two: a mesh
        assert set(bot.peers) == {alice.id}
        moved = asyncio.ensure_future(bot.wait_for(RoomMedia))
        assert (await carol.join("sdk"))["sfu"] is True  # the third moves it
        await alice.expect("room_media")
        await moved
        for member in (alice, carol):
            await member.publish()
        await received.decoding([alice.id, carol.id])
        await alice.decoding_ids([bot.id])
        await carol.decoding_ids([bot.id])
        assert bot.peers == {} and alice.id in received.closed  # its mesh peer, closed
        sfu = bot.sfu
        assert sfu is not None and sfu.publisher is not None and sfu.published == 1
        kinds = sorted(t.kind for t in sfu.publisher.getTransceivers())
        assert kinds == ["audio", "video"]  # one sending connection, its two tracks once
        assert set(bot.sfu_remotes) == {alice.id, carol.id}
        assert sorted(received.kinds[-4:]) == sorted(
            [(alice.id, "audio"), (alice.id, "video"), (carol.id, "audio"), (carol.id, "video")]
        )

        closed = len(received.closed)
        gone = asyncio.ensure_future(bot.wait_for(MemberLeft))
        await alice.send(type="leave")
        await alice.expect("left")
        await gone
        assert received.closed[closed:] == [alice.id]
        assert set(bot.sfu_remotes) == {carol.id}
        await received.decoding([carol.id])

        # A program that only sends (receive=False) is sent nothing, and still seen.
        player = Client(sfu_server.base_url, "player", sfu=True, receive=False)
        player.add_track(VideoStreamTrack())
        async with player:
            await player.join("sdk")
            await carol.decoding_ids([player.id])
            # Janus gives the player alice's old m-lines (a new SSRC on a reused mid): the
            # bot's own track for the player is fed from them.
            await received.decoding([player.id])
            assert received.kinds[-1] == (player.id, "video")
            assert player.sfu is not None and player.sfu.remotes == {}
            stats = await player.sfu.subscriber.getStats() if player.sfu.subscriber else {}
            assert not [s for s in stats.values() if s.type == "inbound-rtp"]

        older = Client(sfu_server.base_url, "older")  # protocol v2 only
        async with older:
            with pytest.raises(ServerError) as refused:
                await older.join("sdk")
            assert refused.value.code == "room_full"
    finally:
        await bot.close()
        await received.stop()


async def test_the_servers_recorder_records_a_room_on_the_sfu(
    sfu_server: RunningServer, members: Callable[..., Any], tmp_path: Path
) -> None:
    """A host records a room on Janus: the server's recorder (``salon bot record``, protocol
    v3) receives everyone through the SFU and writes each publisher's file, with video."""
    av = pytest.importorskip("av")
    alice, bob, carol = [await members(n) for n in ("alice", "bob", "carol")]
    for member in (alice, bob, carol):
        await member.join("rec")
    for member in (alice, bob):
        await member.expect("room_media")
    for member in (alice, bob, carol):
        await member.publish()
    await alice.decoding([bob, carol])

    await alice.send(type="record", on=True)
    running = (await alice.expect("recordings"))["recordings"][0]
    folder = tmp_path / "recordings" / running["id"]
    while not (await bob.expect("member_joined", timeout=30))["member"].get("recorder"):
        pass  # carol's, from before

    def writing() -> bool:
        return all(
            any(p.stat().st_size > 20_000 for p in folder.glob(f"{name}-*.webm"))
            for name in ("bob", "carol")
        )

    deadline = time.monotonic() + 30
    while not writing():
        assert time.monotonic() < deadline, sorted(p.name for p in folder.iterdir())
        await asyncio.sleep(0.2)
    await alice.send(type="record", on=False)
    while not (await alice.expect("recordings", timeout=30))["recordings"][0]["ended"]:
        pass
    for name in ("bob", "carol"):
        (path,) = folder.glob(f"{name}-*.webm")
        with av.open(str(path)) as container:
            video = sum(1 for _ in container.decode(video=0))
        assert video > 10, (name, video)


class JanusProxy:
    """Between Salon and Janus's WebSocket API, on an event loop of its own (the test's
    blocks while the server stops, and the server's last requests to Janus pass here):
    passes every frame on as it is, noting each request ``watched`` selects in ``seen``,
    and the first that ``armed`` selects once set, it holds: ``hold`` seconds, then passes
    it on (Janus answers late), or for good (``hold`` None: Janus never sees it)."""

    def __init__(self, target: str, hold: float | None) -> None:
        self.target = target
        self.hold = hold
        self.watched: Callable[[dict[str, Any]], bool] = lambda message: False
        self.armed: Callable[[dict[str, Any]], bool] | None = None
        self.seen: list[dict[str, Any]] = []
        self.held: list[dict[str, Any]] = []
        self.url = ""
        self._listening = asyncio.Event()

    @contextlib.contextmanager
    def running(self) -> Iterator[JanusProxy]:
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        stop = asyncio.Event()
        try:
            serving = asyncio.run_coroutine_threadsafe(self._serve(stop), loop)
            try:
                asyncio.run_coroutine_threadsafe(self._listening.wait(), loop).result(5)
                yield self
            finally:
                loop.call_soon_threadsafe(stop.set)
                serving.result(5)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(5)
            if not thread.is_alive():
                loop.close()

    async def _serve(self, stop: asyncio.Event) -> None:
        async with serve(self._relay, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:
            self.url = f"ws://127.0.0.1:{next(iter(server.sockets)).getsockname()[1]}"
            self._listening.set()
            await stop.wait()

    async def _relay(self, client: ServerConnection) -> None:
        async with connect(self.target, subprotocols=[SUBPROTOCOL], proxy=None) as janus:

            async def up() -> None:
                async for frame in client:
                    message = json.loads(frame)
                    if self.watched(message):
                        self.seen.append(message)
                    if self.armed is not None and self.armed(message):
                        self.armed = None
                        self.held.append(message)
                        if self.hold is not None:
                            later.append(asyncio.create_task(send_later(frame, self.hold)))
                        continue
                    await janus.send(frame)

            async def send_later(frame: str | bytes, hold: float) -> None:
                await asyncio.sleep(hold)
                await janus.send(frame)

            async def down() -> None:
                async for frame in janus:
                    await client.send(frame)

            later: list[asyncio.Task[None]] = []
            tasks = [asyncio.create_task(up()), asyncio.create_task(down())]
            with contextlib.suppress(ConnectionClosed):
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks + later:
                task.cancel()
            await asyncio.gather(*tasks, *later, return_exceptions=True)


def _subscription(message: dict[str, Any], requests: tuple[str, ...]) -> bool:
    """A request for streams to receive of those ``requests`` name: a subscriber's
    ``join``, or a ``subscribe`` on one."""
    body = message.get("body")
    if message.get("janus") != "message" or not isinstance(body, dict):
        return False
    request = body.get("request")
    return request in requests and (request != "join" or body.get("ptype") == "subscriber")


@pytest.mark.parametrize(
    ("hold", "held_request"),
    [(None, "join"), (REQUEST_SECONDS + 1.0, "subscribe")],
    ids=["join-never-answered", "subscribe-answered-late"],
)
async def test_a_subscription_janus_does_not_answer_in_time_still_comes(
    tmp_path: Path, janus: JanusProcess, hold: float | None, held_request: str
) -> None:
    """dan joins a room on Janus where three publish. His subscriber ``join`` does not
    reach Janus (held for good, as a busy Janus would leave it unanswered): after Janus's
    5 s, Salon gives that handle up and joins again, and dan receives everyone. Or one of
    the others' ``subscribe`` to dan reaches Janus a second after Salon stopped waiting:
    Janus still answers it, its offer comes late, and Salon does not ask again (Janus would
    send dan's streams twice). Either way everyone decodes everyone, each stream once.
    Before, a join Janus did not answer left dan receiving nobody, for good, with every
    connection he had looking well."""
    config = janus.config
    secrets = {"sfu_api_secret": config.api_secret, "sfu_admin_key": config.admin_key}
    proxy = JanusProxy(config.url, hold)
    proxy.watched = lambda message: _subscription(message, ("join", "subscribe"))
    with proxy.running(), _serve(tmp_path, proxy.url, **secrets) as server:
        await _until_health(server, "ok")
        people = [await SfuMember.greeted(server.ws_url, n) for n in ("ann", "ben", "cat")]
        try:
            for member in people:
                await member.join("busy")
            for member in people:
                await member.publish()
            for member in people:
                await member.decoding([m for m in people if m is not member])
            before = len(proxy.seen)
            proxy.armed = lambda message: _subscription(message, (held_request,))
            dan = await SfuMember.greeted(server.ws_url, "dan")
            people.append(dan)
            await dan.join("busy")
            await dan.publish()
            for member in people:
                await member.decoding([m for m in people if m is not member], timeout=40)
            assert len(proxy.held) == 1
            requests = Counter(m["body"]["request"] for m in proxy.seen[before:])
            if hold is None:  # dan's join again, once; each of the others' subscribe once
                assert requests == {"join": 2, "subscribe": 3}, requests
            else:  # dan's join once; the late subscribe was not made again
                assert requests == {"join": 1, "subscribe": 3}, requests
            for member in people:
                kinds = Counter((s["member"], s["kind"]) for s in member.streams.values())
                assert set(kinds.values()) == {1}, (member.name, kinds)
                assert len(kinds) == 2 * (len(people) - 1)
        finally:
            for member in people:
                await member.close()
