"""Races, not parser bugs: many members in a few rooms at once, valid, mutated and broken
frames, sockets that die at any point; afterwards the server is whole.

``ACTORS`` clients share four rooms (most crowd into one, up to 16 at once) and a handful of
reachable names, each on a raw WebSocket (:mod:`tests.integration.rawws`) that writes exactly
what it is told. An actor connects (now and then it is lost during the opening handshake
instead), says hello (plain, reachable, or resuming with a real token, which may take a
live place over, or a forged one), then sends a random run of frames: signals to the real
members of its room, media, chat with client ids (and resends of them), history, hands,
reactions, calls, host actions (remove, mute, make_host, lower_hand, lock, lobby, admit,
deny, password, end_meeting), pings, and the same messages mutated, garbage, binary frames,
messages cut into continuation frames with control frames between them. Some connections
have a small TCP window and stop reading (their outbox overflows: 4002). Then the connection
ends at a random point: a goodbye, a close with another code, a FIN without a close frame, an
RST, half a frame and then an RST, the first fragment of a message and then an RST, a text
frame that is not UTF-8 (1007), or a protocol violation (1002). Every few frames it pings
with a fresh ref and must get its pong: a hang fails the test.

While it runs, every connection checks what it hears: no ``internal`` or
``store_unavailable`` error, no close 1011, no close it did not cause (1002, 1007, 1009,
4001 need a cause; 4005 needs someone to have resumed its place; 4000, 4003, 4004 never
come), its room's chat arrives in ``seq`` order without a gap from the ``last_seq`` of its
``joined``, and a ``joined`` history ends at its ``last_seq``. Afterwards:

- no record at ERROR or above was logged, by any logger (Salon's, uvicorn's, asyncio's);
- every surviving member is served: a ping with a fresh ref gets its pong, and a signal from
  another member of its room reaches it stamped with the sender;
- the hub is consistent (read on the server's own loop): every live connection is attached
  to its place, every place is attached or away (and ``online()`` counts exactly those),
  every seat is a live place of that room, hosts and hands are seated members, every room
  with members has a host, no empty room is left, and what each survivor believes about its
  room (where it is, who is with it) is what the hub holds;
- every room's stored chat (read from the database) is contiguous: seqs 1..N, or, in a room
  whose chat was erased (a meeting with a password ended), a run without gap; client ids are
  unique, and every message any member was delivered (or read in ``history`` or a
  ``joined``) is stored with that seq, id and text.

``SALON_RACE_SEED`` replays a run's choices (the seed is printed; each actor draws from its
own generator, but what it sees, and so some choices, depends on the scheduling).
``SALON_RACE_FRAMES`` sets how many frames to send (default 20,000).

Limits the test is not about are lifted, so the frames reach the code under test instead of
``rate_limited`` or HTTP 429: ``rate_per_second``, ``rate_burst``, ``chat_burst``,
``chat_per_minute``, ``reaction_rate_per_second``, ``reaction_burst``, ``handshake_burst``,
``handshakes_per_minute``, ``max_connections_per_address``, ``room_join_burst`` and
``room_joins_per_minute`` (each has tests of its own: test_limits.py, test_chat.py,
test_reactions.py). ``max_room_members`` is 16 so that one room holds many members at once,
``resume_grace_seconds`` is 1 so that places expire, and depart, during the run, and
``outbox_messages`` is 32 so that a client that stops reading overflows within the run.

Not covered here: several server processes, PostgreSQL (the store here is SQLite; run by
hand on PostgreSQL it found nothing more), signed-in accounts, rooms the server API created,
a restart, a database that fails.

The tests after the fuzz (``test_repro_*``) are bugs it found, each cut down to a short
deterministic sequence; they fail until the bug is fixed in ``src/``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import string
import time
from collections import Counter
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import select

from salon.store.tables import chat_messages
from tests.integration.logrecords import LogRecords, recording
from tests.integration.peer import Peer
from tests.integration.rawws import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    HandshakeRefused,
    RawWebSocket,
    close_payload,
)
from tests.integration.server import RunningServer, running_server

T = TypeVar("T")

FRAMES = int(os.environ.get("SALON_RACE_FRAMES", "20000"))
ACTORS = 28
ROOMS = ("crowd", "crowd", "crowd", "crowd", "side-a", "side-b", "corner")
NAMES = ("ada", "bo", "cy", "dee", "eve", "fay")  # reachable names: a few, so they collide
# A pong or a welcome slower than this is a hang. Normally they take milliseconds; on a
# starved machine a member's ping can wait seconds behind its chat, queued on its room's
# store writes (measured: 4.7 s with six CPU hogs beside the test).
REPLY_SECONDS = 20.0
LIMITS: dict[str, Any] = {
    "rate_per_second": 1e6,
    "rate_burst": 1_000_000,
    "rate_strikes_before_close": 10**9,  # mutated frames count as strikes (row 23)
    "chat_burst": 1_000_000,
    "chat_per_minute": 1e6,
    "reaction_rate_per_second": 1e6,
    "reaction_burst": 1_000_000,
    "handshake_burst": 1_000_000,
    "handshakes_per_minute": 1e6,
    "max_connections_per_address": 100_000,
    "room_join_burst": 1_000_000,
    "room_joins_per_minute": 1e6,
    "max_room_members": 16,
    "resume_grace_seconds": 1.0,
    "outbox_messages": 32,
}
BAD_ERRORS = frozenset({"internal", "store_unavailable"})
# Closes the server may decide whatever the client did: a place taken over (4005), a reader
# too slow for its outbox (4002). Others need a cause: see Conn.provoked.
PROVOKED_CLOSES = {1002: "protocol", 1007: "utf8", 1009: "too_big", 4001: "version"}


# ----------------------------------------------------------------------------- the world


@dataclass
class World:
    """What every actor shares: the seed, the server, the tokens and names in circulation,
    what was delivered, and the problems found."""

    seed: int
    server: RunningServer
    frames: int = 0
    tokens: dict[str, str] = field(default_factory=dict)  # member id -> newest token
    taken_over: set[str] = field(default_factory=set)  # member ids someone resumed
    chat_ids: dict[str, set[str]] = field(default_factory=dict)  # member id -> its chat ids
    passwords: dict[str, str] = field(default_factory=dict)  # room -> last password set
    delivered: list[tuple[str, int, str, str | None, str, str]] = field(default_factory=list)
    pages: list[tuple[str, int, list[int]]] = field(default_factory=list)  # history answers
    problems: list[str] = field(default_factory=list)
    stats: Counter[str] = field(default_factory=Counter)

    @property
    def done(self) -> bool:
        return self.frames >= FRAMES

    def problem(self, text: str) -> None:
        if len(self.problems) < 200:
            self.problems.append(text)

    def observe(self, entry: dict[str, Any], how: str) -> None:
        """A chat entry some member got, as a delivery or in a history page or snapshot."""
        self.delivered.append(
            (entry["room"], entry["seq"], entry["id"], entry["client_id"], entry["text"], how)
        )


# ----------------------------------------------------------------------------- a connection


class Conn:
    """One connection of an actor: its reader keeps the view of the member's room that the
    protocol promises (members, hosts, the lobby, the next chat seq) and checks each message
    against it."""

    def __init__(self, world: World, actor: Actor, ws: RawWebSocket) -> None:
        self.world, self.actor, self.ws = world, actor, ws
        self.id = ""
        self.room: str | None = None
        self.members: set[str] = set()
        self.hosts: set[str] = set()
        self.waiting: list[str] = []  # the lobby, as a host sees it
        self.next_seq: int | None = None  # the seq the room's next chat must have
        self.incoming: str | None = None  # a call ringing for this member
        self.ringing: str | None = None  # a call this member makes
        self.claim: str | None = None  # the member whose place its hello asked to resume
        self.provoked: set[str] = set()  # closes this connection asked for (PROVOKED_CLOSES)
        self.said_close: int | None = None  # the code of our close frame: the server echoes it
        self.sinces: dict[str, int] = {}  # history requests not answered yet: ref -> since
        self.waiters: list[tuple[Callable[[dict[str, Any]], bool], asyncio.Future[Any]]] = []
        self.counted = 0
        self.slow = False  # a small TCP receive window
        self.hearing = asyncio.Event()  # cleared: the client stops reading (a slow link)
        self.hearing.set()
        self.reader = asyncio.create_task(self._read())

    @property
    def dead(self) -> bool:
        return self.reader.done()

    def count(self) -> None:
        self.world.frames += self.ws.written - self.counted
        self.counted = self.ws.written

    def send(self, message: dict[str, Any] | str | bytes) -> None:
        if isinstance(message, dict):
            self.note(message)
            message = json.dumps(message)
        self.ws.text(message)

    def note(self, message: dict[str, Any]) -> None:
        """Remember the client id of a chat about to be sent (its resend is acknowledged)."""
        chat_id = message.get("id")
        if message.get("type") == "chat" and isinstance(chat_id, str):
            self.actor.client_ids.add(chat_id)
            self.world.chat_ids.setdefault(self.id, set()).add(chat_id)

    async def until(self, wanted: Callable[[dict[str, Any]], bool], what: str) -> dict[str, Any]:
        """The first message ``wanted`` accepts; ``{}`` when the connection ends first, or
        after ``REPLY_SECONDS`` (a hang: a problem)."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.waiters.append((wanted, future))
        first = asyncio.FIRST_COMPLETED
        done, _ = await asyncio.wait(
            {future, self.reader}, timeout=REPLY_SECONDS, return_when=first
        )
        if future in done:
            result: dict[str, Any] = future.result()
            return result
        future.cancel()
        if not done:
            self.world.problem(f"hang: no {what} in {REPLY_SECONDS} s on {self.id or 'new'}")
        return {}

    async def sync(self) -> bool:
        """A ping with a fresh ref; True when its pong came (the member is served)."""
        self.actor.refs += 1
        ref = f"{self.actor.n}-{self.actor.refs}"
        self.send({"type": "ping", "ref": ref})
        self.count()
        answer = await self.until(lambda m: m["type"] == "pong" and m["ref"] == ref, "pong")
        return bool(answer)

    async def _read(self) -> None:
        while await self.hearing.wait() and (raw := await self.ws.recv()) is not None:
            message = json.loads(raw)
            try:
                self.handle(message)
            except (KeyError, TypeError) as exc:
                self.world.problem(f"malformed {message}: {exc!r}")
            for wanted, future in list(self.waiters):
                if not future.done() and wanted(message):
                    future.set_result(message)
                    self.waiters.remove((wanted, future))
        self.check_close(self.ws.close_code)

    def check_close(self, code: int | None) -> None:
        self.world.stats[f"closed {code}"] += 1
        cause = PROVOKED_CLOSES.get(code or 0)
        if code == self.said_close:
            return  # the echo of our own close frame
        if code == 1011:
            self.world.problem(f"{self.id}: closed 1011 (internal error)")
        elif code == 4005 and (self.id or self.claim) not in self.world.taken_over:
            # A resume replaced before its welcome was written never learnt its id: the
            # place it claimed is the one taken over.
            self.world.problem(f"{self.id}: replaced (4005) though nobody resumed it")
        elif code in (4000, 4003, 4004):
            self.world.problem(f"{self.id}: closed {code}, a deadline or rate it never hit")
        elif cause is not None and cause not in self.provoked:
            self.world.problem(f"{self.id}: closed {code} without sending {cause}")

    # ------------------------------------------------------------------ what it hears

    def handle(self, m: dict[str, Any]) -> None:
        kind = m["type"]
        self.world.stats[f"got {kind}"] += 1
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, m)

    def _welcome(self, m: dict[str, Any]) -> None:
        if self.id:
            self.world.problem(f"{self.id}: a second welcome, {m['id']}")
        self.id = m["id"]
        self.world.tokens[self.id] = m["resume_token"]
        resumed = m["resumed"]
        self.room = None if resumed is None else resumed["room"]
        self.members, self.hosts, self.next_seq = set(), set(), None

    def _token(self, m: dict[str, Any]) -> None:
        self.world.tokens[self.id] = m["token"]

    def _joined(self, m: dict[str, Any]) -> None:
        self.room, self.next_seq = m["room"], m["last_seq"] + 1
        self.members = {member["id"] for member in m["members"]}
        self.hosts, self.waiting = set(m["hosts"]), []
        seqs = [entry["seq"] for entry in m["history"]]
        if seqs and seqs != list(range(m["last_seq"] - len(seqs) + 1, m["last_seq"] + 1)):
            self.world.problem(
                f"{self.id}: joined {m['room']} history {seqs}, last {m['last_seq']}"
            )
        for entry in m["history"]:
            self.world.observe(entry, "joined")

    def _left(self, m: dict[str, Any]) -> None:
        """``left`` or ``lobby_waiting``: in no room now."""
        self.room, self.next_seq = None, None
        self.members, self.hosts, self.waiting = set(), set(), []

    def _member_in(self, m: dict[str, Any]) -> None:
        if m["room"] == self.room:
            self.members.add(m["member"]["id"])

    def _member_left(self, m: dict[str, Any]) -> None:
        if m["room"] == self.room:
            self.members.discard(m["id"])

    def _room_state(self, m: dict[str, Any]) -> None:
        if m["room"] == self.room:
            self.hosts = set(m["hosts"])

    def _lobby(self, m: dict[str, Any]) -> None:
        self.waiting = [knocker["id"] for knocker in m["waiting"]]

    def _chat(self, m: dict[str, Any]) -> None:
        self.world.observe(m, "chat")
        seq, expected, room = m["seq"], self.next_seq, m["room"]
        if expected is None:
            return  # resumed: what was kept comes before the joined snapshot
        if self.sent(m["client_id"]) and (room != self.room or seq < expected):
            return  # a resend acknowledged: the stored entry, to its sender wherever it is
        if room != self.room:
            self.world.problem(f"{self.id} in {self.room}: chat of {room}: {m}")
        elif seq != expected:
            self.world.problem(f"{self.id}: {room} chat seq {seq}, expected {expected}: {m}")
        if room == self.room:
            self.next_seq = max(expected, seq + 1)

    def sent(self, client_id: str | None) -> bool:
        """Whether this place, or this actor from any place, sent a chat with that id."""
        if client_id is None:
            return False
        return client_id in self.actor.client_ids or client_id in self.world.chat_ids.get(
            self.id, ()
        )

    def _history(self, m: dict[str, Any]) -> None:
        for entry in m["messages"]:
            self.world.observe(entry, "history")
        if self.sinces:  # the oldest request not answered yet
            since = self.sinces.pop(next(iter(self.sinces)))
            self.world.pages.append((m["room"], since, [entry["seq"] for entry in m["messages"]]))

    def _error(self, m: dict[str, Any]) -> None:
        self.world.stats[f"error {m['code']}"] += 1
        self.sinces.pop(str(m["ref"]), None)
        if m["code"] in BAD_ERRORS:
            self.world.problem(f"{self.id}: error {m}")

    def _incoming(self, m: dict[str, Any]) -> None:
        self.incoming = m["call"]

    def _ringing(self, m: dict[str, Any]) -> None:
        self.ringing = m["call"]

    def _call_ended(self, m: dict[str, Any]) -> None:
        self.incoming = self.ringing = None


_HANDLERS: dict[str, Callable[[Conn, dict[str, Any]], None]] = {
    "welcome": Conn._welcome,
    "resume_token": Conn._token,
    "joined": Conn._joined,
    "left": Conn._left,
    "lobby_waiting": Conn._left,
    "member_joined": Conn._member_in,
    "member_resumed": Conn._member_in,
    "member_left": Conn._member_left,
    "room_state": Conn._room_state,
    "lobby": Conn._lobby,
    "chat": Conn._chat,
    "history": Conn._history,
    "error": Conn._error,
    "incoming_call": Conn._incoming,
    "ringing": Conn._ringing,
    "call_ended": Conn._call_ended,
    "call_accepted": Conn._call_ended,
}


# ----------------------------------------------------------------------------- values


def text(rng: random.Random, n: int) -> str:
    alphabet = string.ascii_letters + " \n\t.,!?éß漢字🙂\u200d\u202e\x00\ud800"
    return "".join(rng.choice(alphabet) for _ in range(n))


def value(rng: random.Random, depth: int = 0) -> Any:
    """Any JSON value, biased toward the edges the schema checks."""
    kind = rng.randrange(10 if depth < 3 else 7)
    if kind == 0:
        return None
    if kind == 1:
        return rng.random() < 0.5
    if kind == 2:
        return rng.choice([0, -1, 1, 2**53, 2**53 + 1, -(2**70), rng.randrange(-99, 99)])
    if kind == 3:
        return rng.choice([0.5, 1.0, -0.0, 1e308, rng.random()])
    if kind == 4:
        return text(rng, rng.randrange(0, 20))
    if kind == 5:
        return rng.choice(["", "x" * rng.choice([64, 65, 300, 5000]), "crowd", "call-x"])
    if kind == 6:
        return rng.choice(["offer", "answer", "mic", "camera", "thumbs_up", "hello", "chat"])
    if kind == 7:
        return [value(rng, depth + 1) for _ in range(rng.randrange(4))]
    if kind == 8:
        return {text(rng, 3): value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return "[" * rng.randrange(1, 3000)


def mutate(rng: random.Random, message: dict[str, Any]) -> dict[str, Any]:
    """One to three edits: a field replaced, deleted or added, or the type changed."""
    message = dict(message)
    for _ in range(rng.randint(1, 3)):
        action = rng.randrange(4)
        keys = sorted(message)
        if action == 0 and keys:
            message[rng.choice(keys)] = value(rng)
        elif action == 1 and keys:
            message.pop(rng.choice(keys))
        elif action == 2:
            message[rng.choice(["ref", "to", "id", "extra", text(rng, 4)])] = value(rng)
        else:
            message["type"] = rng.choice([value(rng), "welcome", "joined", "signal", "hello"])
    return message


# ----------------------------------------------------------------------------- an actor


@dataclass
class Actor:
    """One simulated client: connection after connection, each with a random life."""

    n: int
    world: World
    rng: random.Random
    conn: Conn | None = None
    refs: int = 0
    chats: int = 0
    client_ids: set[str] = field(default_factory=set)  # chat ids it sent, any place

    async def run(self) -> None:
        while not self.world.done:
            if self.rng.random() < 0.03:
                await self.stillborn()
                continue
            conn = await self.connect()
            if conn is None:
                continue
            self.conn = conn
            if self.rng.random() > 0.03 and await self.greet(conn):
                await self.live(conn)
            if self.world.done and not conn.dead and conn.id:
                conn.hearing.set()
                return  # survives: checked after the run
            await self.end(conn)
            conn.count()
        self.conn = None

    async def connect(self) -> Conn | None:
        server, slow = self.world.server, self.rng.random() < 0.15
        try:
            ws = await RawWebSocket.open(
                "127.0.0.1", server.port, server.ssl_context, receive_buffer=4096 if slow else None
            )
        except HandshakeRefused as exc:
            self.world.problem(f"handshake refused: {exc}")
            await asyncio.sleep(0.1)  # a pause before this actor tries again (fails the run)
            return None
        conn = Conn(self.world, self, ws)
        conn.slow = slow
        return conn

    async def stillborn(self) -> None:
        """A connection lost during its opening handshake."""
        server = self.world.server
        cut = self.rng.randrange(0, 150)
        await RawWebSocket.stillborn("127.0.0.1", server.port, server.ssl_context, cut)
        self.world.stats["stillborn"] += 1

    async def greet(self, conn: Conn) -> bool:
        """Say hello: plain, reachable, or resuming with a real or forged token. A refused
        hello (a taken name, a dead token) is followed by a plain one."""
        rng, world = self.rng, self.world
        for _ in range(rng.choice([0, 0, 0, 1, 3])):
            conn.send(self.junk())  # before hello: hello_required, bad_json, ...
        hello: dict[str, Any] = {"type": "hello", "versions": [1], "name": f"m{self.n}"}
        roll = rng.random()
        if roll < 0.25 and world.tokens:
            member, token = rng.choice(sorted(world.tokens.items()))
            if rng.random() < 0.3:
                token = forge(rng, token)
            else:
                world.taken_over.add(member)
            hello["resume"] = token
            conn.claim = member
        elif roll < 0.35:
            hello.update(name=rng.choice(NAMES), reachable=True)
        for attempt in range(2):
            hello["ref"] = f"hello-{self.n}-{attempt}"
            conn.send(hello)
            conn.count()
            ref = hello["ref"]
            answer = await conn.until(
                lambda m, ref=ref: m["type"] == "welcome" or m.get("ref") == ref, "welcome"
            )
            if answer.get("type") == "welcome":
                world.stats["resumed" if answer["resumed"] else "greeted"] += 1
                return True
            if not answer:
                return False
            hello = {"type": "hello", "versions": [1], "name": f"m{self.n}"}
        return False

    async def live(self, conn: Conn) -> None:
        """A random run of steps, a sync (ping, pong) every few; a connection with a small
        receive window may stop reading for the rest of its life (the server's outbox for it
        overflows: 4002)."""
        if self.rng.random() < 0.9:
            conn.send(self.join(conn))
        deaf_at = self.rng.randrange(100) if conn.slow and self.rng.random() < 0.5 else None
        for step_no in range(self.rng.randint(5, 150)):
            if self.world.done or conn.dead:
                return
            if step_no == deaf_at:
                conn.hearing.clear()
                self.world.stats["deaf"] += 1
            step = self.rng.choices(STEPS, WEIGHTS)[0]
            step(self, conn)
            conn.count()
            if conn.hearing.is_set() and self.rng.random() < 0.12 and not await conn.sync():
                return
            await conn.ws.drain()
            await asyncio.sleep(0)

    # ------------------------------------------------------------------ valid messages

    def someone(self, conn: Conn) -> str:
        """A member id: mostly of this room, sometimes anyone's, sometimes one's own."""
        roll = self.rng.random()
        if roll < 0.8 and conn.members:
            return self.rng.choice(sorted(conn.members))
        if roll < 0.95 and self.world.tokens:
            return self.rng.choice(sorted(self.world.tokens))
        return conn.id

    def join(self, conn: Conn) -> dict[str, Any]:
        room = self.rng.choice(ROOMS)
        message: dict[str, Any] = {"type": "join", "room": room}
        if room in self.world.passwords and self.rng.random() < 0.8:
            message["password"] = self.world.passwords[room]
        if self.rng.random() < 0.5:
            message["media"] = {"mic": True, "camera": self.rng.random() < 0.5, "screen": False}
        return message

    def signal(self, conn: Conn) -> dict[str, Any]:
        rng = self.rng
        payload = rng.choice(
            [
                {"description": {"type": rng.choice(["offer", "answer"]), "sdp": "v=0\r\n"}},
                {"candidate": {"candidate": "candidate:1 1 udp 1 10.0.0.1 9 typ host"}},
                {"candidate": {"candidate": "", "sdpMid": "0", "sdpMLineIndex": 0}},
                {"rejected": {"type": "offer", "message": "no"}},
                {"reset": {"reason": "ice_failed"}},
            ]
        )
        return {"type": "signal", "to": self.someone(conn), **payload}

    def chat(self, conn: Conn) -> dict[str, Any]:
        """A chat, mostly with a fresh client id, sometimes resending an earlier one."""
        rng = self.rng
        body = text(rng, rng.randint(1, 80)).replace("\ud800", "").replace("\x00", "")
        message: dict[str, Any] = {"type": "chat", "text": body or "x"}
        if self.client_ids and rng.random() < 0.2:
            message["id"] = rng.choice(sorted(self.client_ids))
        elif rng.random() < 0.9:
            self.chats += 1
            message["id"] = f"s{self.world.seed % 10_000}-a{self.n}-{self.chats}"
        return message

    def small(self, conn: Conn) -> dict[str, Any]:
        """A message about oneself: media, hand, reaction, presence, ICE, a pong, leave."""
        rng = self.rng
        return rng.choice(
            [
                {"type": "media", "mic": True, "camera": False, "screen": rng.random() < 0.5},
                {"type": "hand", "raised": rng.random() < 0.6},
                {"type": "reaction", "reaction": rng.choice(["clap", "wave", "heart"])},
                {"type": "presence_watch", "watch": rng.random() < 0.5},
                {"type": "ice_refresh"},
                {"type": "pong"},
                {"type": "leave"},
            ]
        )

    def call(self, conn: Conn) -> dict[str, Any]:
        rng = self.rng
        if conn.incoming is not None:
            kind = rng.choice(["call_accept", "call_accept", "call_decline"])
            return {"type": kind, "call": conn.incoming}
        if conn.ringing is not None and rng.random() < 0.5:
            return {"type": "call_cancel", "call": conn.ringing}
        return {"type": "call", "name": rng.choice(NAMES)}

    def host(self, conn: Conn) -> dict[str, Any]:
        """A host action; sent by non-hosts too (``not_host``)."""
        rng = self.rng
        target = self.someone(conn)
        waiting = rng.choice(conn.waiting) if conn.waiting else target
        password = rng.choice(["pw", "secret", "pw", ""])
        message: dict[str, Any] = rng.choices(
            [
                {"type": "remove", "id": target},
                {"type": "mute", "id": target, "kind": rng.choice(["mic", "camera"])},
                {"type": "make_host", "id": target},
                {"type": "lower_hand", "id": target},
                {"type": "room_lock", "locked": rng.random() < 0.3},
                {"type": "room_lobby", "enabled": rng.random() < 0.3},
                {"type": "lobby_admit", "id": waiting},
                {"type": "lobby_deny", "id": waiting},
                {"type": "room_password", "password": password},
                {"type": "end_meeting"},
            ],
            [8, 8, 8, 4, 4, 3, 6, 2, 2, 2],
        )[0]
        if message["type"] == "room_password" and conn.id in conn.hosts and conn.room:
            self.world.passwords[conn.room] = password  # others join with it
        return message

    def history(self, conn: Conn) -> dict[str, Any]:
        since = self.rng.choice([0, 0, max(0, (conn.next_seq or 1) - 5)])
        self.refs += 1
        ref = f"history-{self.n}-{self.refs}"
        conn.sinces[ref] = since  # answers come in order; an error names its ref
        return {"type": "history", "since": since, "ref": ref}

    def valid(self, conn: Conn) -> dict[str, Any]:
        """A valid message (as far as the sender knows), for mutation and fragmentation."""
        builder = self.rng.choice(VALID)
        return builder(self, conn)

    def send_valid(self, conn: Conn) -> None:
        builder = self.rng.choices([*VALID, Actor.history], VALID_WEIGHTS)[0]
        conn.send(builder(self, conn))

    # ------------------------------------------------------------------ the rest

    def mutated(self, conn: Conn) -> None:
        conn.send(mutate(self.rng, self.valid(conn)))

    def junk(self) -> str:
        rng = self.rng
        return rng.choice(
            [
                json.dumps(value(rng)),
                text(rng, rng.randrange(30)).replace("\ud800", ""),
                '{"type": "chat", "text": "a", "type": "hello"}',
                "[" * 5000 + "]" * 5000,
                '{"type":"ping","ref":' + "9" * 400 + "}",
                "",
            ]
        )

    def garbage(self, conn: Conn) -> None:
        rng = self.rng
        if rng.random() < 0.3:
            conn.ws.frame(OP_BINARY, rng.randbytes(rng.randrange(40)))
        else:
            conn.send(self.junk())

    def fragmented(self, conn: Conn) -> None:
        """A valid message in continuation frames, maybe with a ping or pong between."""
        message = self.valid(conn)
        conn.note(message)
        payload = json.dumps(message).encode()
        cuts = sorted({self.rng.randrange(1, len(payload)) for _ in range(self.rng.randint(1, 3))})
        if self.rng.random() < 0.4:
            conn.ws.frame(OP_TEXT, payload[: cuts[0]], fin=False)
            conn.ws.frame(self.rng.choice([OP_PING, OP_PONG]), b"x")
            conn.ws.fragments(OP_CONT, payload[cuts[0] :], [c - cuts[0] for c in cuts[1:]])
        else:
            conn.ws.fragments(OP_TEXT, payload, cuts)

    def control(self, conn: Conn) -> None:
        conn.ws.frame(self.rng.choice([OP_PING, OP_PONG]), self.rng.randbytes(8))

    # ------------------------------------------------------------------ the end

    async def end(self, conn: Conn) -> None:
        """End the connection one way or another, then wait for its reader."""
        rng, ws = self.rng, conn.ws
        conn.hearing.set()
        how = rng.choices(ENDINGS, [20, 8, 10, 20, 20, 8, 9, 5])[0]
        self.world.stats[f"end {how}"] += 1
        if how in ("goodbye", "other_code"):
            codes = [1000, 1001] if how == "goodbye" else [3000, 4000, 4321, 1011]
            conn.said_close = rng.choice(codes)
            ws.goodbye(conn.said_close)
        elif how == "fin":
            ws.vanish()
        elif how == "rst":
            ws.reset()
        elif how == "half_frame":
            payload = json.dumps(self.valid(conn)).encode()
            ws.partial(OP_TEXT, payload, rng.randrange(1, len(payload) + 8))
        elif how == "half_message":
            payload = json.dumps(self.valid(conn)).encode()
            ws.frame(OP_TEXT, payload[: len(payload) // 2], fin=False)
        elif how == "utf8":
            conn.provoked.add("utf8")
            self.bad_utf8(conn)
        else:
            conn.provoked.add("protocol")
            self.violation(conn)
        if how in ("half_frame", "half_message"):
            await ws.drain()
            ws.reset()
        conn.count()
        await asyncio.wait({conn.reader}, timeout=REPLY_SECONDS)
        if not conn.reader.done():
            self.world.problem(f"{conn.id}: the server kept a dying connection ({how}) open")
        ws.reset()  # no-op when already closed; an RST for whatever is left

    def bad_utf8(self, conn: Conn) -> None:
        """A chat whose text is not UTF-8: in one frame, or cut inside the bad sequence so
        that each fragment alone could still be the start of a valid one."""
        bad = self.rng.choice([b"\xc3\x28", b"\xed\xa0\x80", b"\xff", b"\xe2\x82("])
        payload = b'{"type":"chat","text":"' + bad + b'"}'
        if self.rng.random() < 0.5:
            conn.ws.text(payload)
        else:
            conn.ws.fragments(OP_TEXT, payload, [payload.index(bad) + 1])

    def violation(self, conn: Conn) -> None:
        """Something RFC 6455 forbids a client: answered 1002."""
        ws = conn.ws
        choice = self.rng.randrange(5)
        if choice == 0:
            ws.frame(OP_CONT, b'{"type":"ping"}')  # a continuation of nothing
        elif choice == 1:
            ws.frame(OP_PING, b"a", fin=False)  # a fragmented control frame
        elif choice == 2:
            ws.frame(OP_TEXT, b'{"type":"ping"}', rsv=4)  # a reserved bit
        elif choice == 3:
            ws.frame(OP_TEXT, b'{"type":', fin=False)
            ws.frame(OP_TEXT, b'"ping"}')  # a new message inside a fragmented one
        else:
            ws.frame(OP_CLOSE, close_payload(1005))  # a code no close frame may carry


VALID: list[Callable[[Actor, Conn], dict[str, Any]]] = [
    Actor.signal,
    Actor.chat,
    Actor.small,
    Actor.join,
    Actor.call,
    Actor.host,
]
VALID_WEIGHTS = [22, 16, 12, 5, 3, 9, 3]  # the last: history
STEPS: list[Callable[[Actor, Conn], None]] = [
    Actor.send_valid,
    Actor.mutated,
    Actor.garbage,
    Actor.fragmented,
    Actor.control,
]
WEIGHTS = [70, 10, 4, 6, 1]
ENDINGS = ["goodbye", "other_code", "fin", "rst", "half_frame", "half_message", "utf8", "proto"]


def forge(rng: random.Random, token: str) -> str:
    """A token that is not the server's: one character changed, cut short, or made up."""
    roll = rng.randrange(3)
    if roll == 0:
        i = rng.randrange(len(token))
        return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]
    if roll == 1:
        return token[: len(token) // 2]
    return "".join(rng.choice(string.ascii_letters) for _ in range(rng.randrange(1, 200)))


# ----------------------------------------------------------------------------- the server side


def error_log() -> contextlib.AbstractContextManager[LogRecords]:
    """Every record at ERROR or above, from any logger (uvicorn's and asyncio's included), and
    asyncio's warnings: "SSL connection is closed" was one per write into a connection the
    client had closed, driven by any client."""
    return recording(
        logging.ERROR, also=lambda r: r.name == "asyncio" and r.levelno >= logging.WARNING
    )


class OnServer:
    """Runs coroutines on the server's own event loop (its thread), where the hub lives:
    reading the hub from another thread could see it half-changed."""

    def __init__(self, server: RunningServer) -> None:
        self.loop = server.server.servers[0].get_loop()
        self.state = server.server.config.app.state.salon

    async def run(self, work: Callable[[], Coroutine[Any, Any, T]], timeout: float = 15) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(work(), self.loop)
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)

    async def call(self, work: Callable[[], T]) -> T:
        async def wrapped() -> T:
            return work()

        return await self.run(wrapped)

    async def until(self, condition: Callable[[], bool], seconds: float) -> bool:
        """Poll the server's state (it has no event for this) until ``condition`` holds."""
        deadline = time.monotonic() + seconds
        while not await self.call(condition):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True


def spy_on_erasures(on: OnServer) -> set[str]:
    """Rooms whose stored chat was erased (a meeting with a password ended): their seqs may
    start past 1, or start again at 1."""
    erased: set[str] = set()
    chats = on.state.hub.chats
    erase = chats.erase

    async def recorded(room: str) -> int:
        erased.add(room)
        result: int = await erase(room)
        return result

    chats.erase = recorded
    return erased


def hub_problems(state: Any, survivors: dict[str, Conn]) -> list[str]:
    """What is wrong with the hub, read on the server's loop once the run has settled."""
    hub, problems = state.hub, []
    live = {c.session.place.id: c for c in state.connections if c.session and c.session.place}
    for conn in state.connections:
        place = conn.session.place if conn.session else None
        if place is None or place.transport is not conn or conn.closing:
            problems.append(f"a live connection not attached to a place: {place and place.id}")
    places = hub._places  # the hub's own book of places, attached or away
    attached = [p for p in places.values() if p.transport is not None]
    away = [p for p in places.values() if p.away]
    for place in places.values():
        if (place.transport is not None) == place.away:
            problems.append(f"place {place.id} is neither attached nor away (or both)")
        elif place.transport is not None and live.get(place.id) is not place.transport:
            problems.append(f"place {place.id} attached to a connection that is gone")
    if hub.online() != len(attached) + len(away):
        problems.append(f"online() {hub.online()} != {len(attached)} attached + {len(away)} away")
    if set(live) != set(survivors):
        problems.append(f"live members {sorted(live)} != survivors {sorted(survivors)}")
    for room in hub.rooms.values():
        problems += room_problems(hub, room)
    return problems


def room_problems(hub: Any, room: Any) -> list[str]:
    problems = []
    if not room.seats and not room.waiting:
        problems.append(f"room {room.id} is empty but still live")
    for mid, seat in room.seats.items():
        if hub.place(mid) is not seat.member:
            problems.append(f"room {room.id} seats {mid}, a ghost (no such place)")
        elif seat.member.room != room.id:
            problems.append(f"room {room.id} seats {mid}, whose place says {seat.member.room}")
    if not room.hosts <= set(room.seats) or not set(room.hands) <= set(room.seats):
        problems.append(f"room {room.id}: hosts or hands of members not seated")
    if room.seats and room.allowed is None and not room.hosts:
        problems.append(f"room {room.id} has members but no host")
    for mid in room.waiting:
        if hub.place(mid) is None or mid in room.seats:
            problems.append(f"room {room.id}: {mid} waits in its lobby but is gone or seated")
    return problems


def views(state: Any, survivors: dict[str, Conn]) -> list[str]:
    """Where each survivor believes it is, and with whom, against the hub."""
    problems = []
    for mid, conn in survivors.items():
        place = state.hub.place(mid)
        room = state.hub.rooms.get(place.room) if place and place.room else None
        seated = set(room.seats) - {mid} if room else set()
        if conn.room != (place.room if place else None) or conn.members != seated:
            problems.append(
                f"{mid} believes it is in {conn.room} with {sorted(conn.members)}; "
                f"the hub: {place and place.room} with {sorted(seated)}"
            )
    return problems


async def stored_chat(on: OnServer) -> dict[str, list[Any]]:
    async def read() -> dict[str, list[Any]]:
        async with on.state.engine.connect() as db:
            rows = (await db.execute(select(chat_messages).order_by(chat_messages.c.seq))).all()
        rooms: dict[str, list[Any]] = {}
        for row in rows:
            rooms.setdefault(row.room, []).append(row)
        return rooms

    return await on.run(read)


def chat_problems(world: World, stored: dict[str, list[Any]], erased: set[str]) -> list[str]:
    problems = []
    for room, rows in stored.items():
        seqs = [row.seq for row in rows]
        first = 1 if room not in erased else seqs[0]
        if seqs != list(range(first, first + len(seqs))):
            gaps = sorted(set(range(first, seqs[-1] + 1)) - set(seqs))[:10]
            problems.append(f"room {room}: stored seqs not contiguous from {first}: gaps {gaps}")
        ids = [row.client_id for row in rows if row.client_id is not None]
        if len(ids) != len(set(ids)):
            problems.append(f"room {room}: a client id stored twice")
    by_seq = {(room, row.seq): row for room, rows in stored.items() for row in rows}
    for room, seq, mid, client_id, body, how in world.delivered:
        if room in erased:
            continue
        row = by_seq.get((room, seq))
        if row is None or (row.id, row.client_id, row.text) != (mid, client_id, body):
            problems.append(f"{room} seq {seq} ({how}) was {mid}, stored as {row}")
    for room, since, seqs in world.pages:
        if room not in erased and seqs and seqs != list(range(since + 1, since + 1 + len(seqs))):
            problems.append(f"history of {room} since {since}: {seqs}")
    return problems[:50]


# ----------------------------------------------------------------------------- the test


async def test_many_members_racing_in_rooms_leave_the_server_whole(tmp_path: Path) -> None:
    seed = int(os.environ.get("SALON_RACE_SEED", random.randrange(2**32)))
    print(f"race fuzz: SALON_RACE_SEED={seed}")
    started = time.monotonic()
    with error_log() as errors, running_server(tmp_path, **LIMITS) as server:
        on = OnServer(server)
        erased = spy_on_erasures(on)
        world = World(seed, server)
        actors = [Actor(n, world, random.Random(f"{seed}:{n}")) for n in range(ACTORS)]
        await asyncio.gather(*(actor.run() for actor in actors))
        fuzzed = time.monotonic() - started
        last = [a.conn for a in actors if a.conn is not None]
        survivors: dict[str, Conn] = {}
        try:
            survivors = await served(world, last)
            await settle(on, world, survivors)
            problems = await on.call(
                lambda: hub_problems(on.state, survivors) + views(on.state, survivors)
            )
            problems += await still_relayed(on, world, survivors)
            problems += chat_problems(world, await stored_chat(on), erased)
            world.stats["rooms erased"] = len(erased)
        finally:
            await close_all(last)
    print(
        f"race fuzz: {world.frames} frames in {fuzzed:.1f} s ({world.frames / fuzzed:.0f}/s), "
        f"{len(survivors)} survivors, {len(world.delivered)} chat deliveries seen; "
        f"{dict(sorted(world.stats.items()))}"
    )
    context = f"\n(replay: SALON_RACE_SEED={seed})"
    assert world.frames >= FRAMES
    found = world.problems[:40] + problems + [f"logged: {line}" for line in errors.lines()[:10]]
    assert found == [], "\n".join(found) + context


async def served(world: World, conns: list[Conn]) -> dict[str, Conn]:
    """The actors' last connections that still answer a ping with a fresh ref: the
    survivors, by member id. One that ended meanwhile (taken over, say) had its close
    checked; one that neither answers nor ends is a hang (a problem)."""
    survivors = {}
    for conn in conns:
        if not conn.dead and conn.id and await conn.sync():
            survivors[conn.id] = conn
    return survivors


async def settle(on: OnServer, world: World, survivors: dict[str, Conn]) -> None:
    """Wait until the server has handled everything: the connections that ended, the places
    whose grace window ran out, the store's writes; then each survivor's pong again (what the
    departures told them has arrived)."""
    state = on.state
    if not await on.until(lambda: len(state.connections) == len(survivors), 15):
        world.problem(f"{len(state.connections)} connections live, {len(survivors)} survivors")
    if not await on.until(lambda: not any(p.away for p in state.hub._places.values()), 10):
        world.problem("places still away long after their grace window")
    await on.run(lambda: state.hub.settle(10))
    for conn in survivors.values():
        if not await conn.sync():
            world.problem(f"survivor {conn.id} not served after the run")


async def still_relayed(on: OnServer, world: World, survivors: dict[str, Conn]) -> list[str]:
    """In each room, each surviving member gets a signal from the one seated before it."""
    state = on.state

    def seated() -> list[list[str]]:
        return [[m for m in room.seats if m in survivors] for room in state.hub.rooms.values()]

    problems = []
    rooms = [ids for ids in await on.call(seated) if len(ids) >= 2]
    for ids in rooms:
        for sender, receiver in zip(ids, ids[1:] + ids[:1], strict=True):
            sdp = f"v=0 relay check {sender}"
            survivors[sender].send(
                {"type": "signal", "to": receiver, "description": {"type": "offer", "sdp": sdp}}
            )
            got = await survivors[receiver].until(
                lambda m, sdp=sdp: m["type"] == "signal" and m["description"]["sdp"] == sdp,
                "relayed signal",
            )
            if got.get("from") != sender:
                problems.append(f"{receiver} did not get {sender}'s signal: {got}")
    world.stats["relay checks"] = sum(len(ids) for ids in rooms)
    return problems


async def close_all(conns: list[Conn]) -> None:
    for conn in conns:
        conn.said_close = 1000
        conn.ws.goodbye(1000)
    for conn in conns:
        await asyncio.wait({conn.reader}, timeout=5)
        conn.ws.abandon()
        if not conn.reader.done():
            conn.reader.cancel()


# ----------------------------------------------------------------------------- reproductions
#
# Each test below is a server bug the fuzz above found, cut down to a deterministic sequence.
# They fail until the bug is fixed (in src/, not here).


class AppendGate:
    """Holds the store's chat writes whose text starts with ``hold:`` until the test releases
    them, one by one: a slow database, made to order."""

    def __init__(self, on: OnServer) -> None:
        self.on = on
        self.held: asyncio.Queue[tuple[int, asyncio.Event]] | None = None

    async def install(self) -> None:
        chats = self.on.state.hub.chats
        append = chats.append
        held: asyncio.Queue[tuple[int, asyncio.Event]] = asyncio.Queue()  # the server's loop

        async def gated(entry: Any) -> Any:
            if entry.text.startswith("hold:"):
                release = asyncio.Event()
                await held.put((entry.seq, release))
                await release.wait()
            return await append(entry)

        async def install() -> None:
            chats.append = gated

        await self.on.run(install)
        self.held = held

    async def next_held(self) -> tuple[int, asyncio.Event]:
        """The next write that reached the store (its seq, and what releases it)."""
        assert self.held is not None
        return await self.on.run(self.held.get, timeout=5)

    async def release(self, event: asyncio.Event) -> None:
        await self.on.call(event.set)


async def next_of(peer: Peer, kind: str) -> dict[str, Any]:
    """The next message of ``kind``, passing over the room's other news."""
    while True:
        message = await peer.recv()
        if message["type"] == kind:
            return message


async def test_repro_a_meeting_ended_while_chat_writes_queue_splits_the_room(
    tmp_path: Path,
) -> None:
    """REPRODUCTION of a server bug the race fuzz found (fails until it is fixed).

    ``Room.idle`` counts a chat write only while it holds the room's ``chat_lock``. When the
    write under way releases it, ``_write_chat`` calls ``_forget_if_idle`` before the next
    queued write has woken up to take the lock, so a room whose members all left meanwhile
    (here: ``end_meeting``) is forgotten with writes still queued. Those writes number and
    store on the forgotten ``Room``, while the next ``join`` brings a second ``Room`` to life
    from a store that does not have them yet: its ``last_seq`` is stale, its next chat
    collides with a stored seq (``SeqTaken``, answered ``store_unavailable`` "the chat was
    busy"), and its members see a gap in ``seq`` and a ``joined`` whose history ends below its
    ``last_seq``. Sequence: bob's chat is being stored (held), carol's waits for the lock,
    alice (host) ends the meeting; bob's write completes; dave joins; carol's completes; dave
    chats."""
    with running_server(tmp_path, chat_burst=100) as server:
        on = OnServer(server)
        gate = AppendGate(on)
        await gate.install()
        peers = [await Peer.greeted(server, name) for name in ("alice", "bob", "c", "dave")]
        try:
            await split_room(on, gate, *peers)
        finally:
            for peer in peers:
                await peer.close()


async def split_room(on: OnServer, gate: AppendGate, *peers: Peer) -> None:
    alice, bob, carol, dave = peers
    for peer in (alice, bob, carol):
        await peer.join("r")
    await bob.send(type="chat", text="hold: bob's", id="bob-1")
    _, bobs_write = await gate.next_held()
    await carol.send(type="chat", text="hold: carol's", id="carol-1")
    room = await on.call(lambda: on.state.hub.rooms["r"])
    assert await on.until(lambda: bool(room.chat_lock._waiters), 5)  # carol's is queued
    await alice.send(type="end_meeting")
    await next_of(alice, "left")
    await gate.release(bobs_write)
    _, carols_write = await gate.next_held()  # carol's write holds the lock now ...
    joined = await dave.join("r")  # ... while dave brings the room to life
    await gate.release(carols_write)
    await dave.send(type="chat", text="after", id="dave-1")
    seqs = []
    while True:
        message = await dave.recv()
        assert message["type"] != "error", message  # store_unavailable: the chat was busy
        if message["type"] == "chat":
            seqs.append(message["seq"])
            if message["client_id"] == "dave-1":
                break
    expected = list(range(joined["last_seq"] + 1, joined["last_seq"] + 1 + len(seqs)))
    assert seqs == expected and seqs[-1] == 3, (joined["last_seq"], seqs)
