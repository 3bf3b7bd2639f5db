"""Two Salon processes over one Redis behave as one server (docs/SCALING.md).

A real ``redis-server`` on a free port and two ``salon serve`` subprocesses sharing it, the
database and the resume secret (:mod:`tests.integration.cluster`); the clients are real
WebSocket connections, each to the process the test names. A room lives on one process (its
home); members connected to the other are piped there. Everything a member sees must be what
one process would show: signals, one chat sequence, one presence list, calls by name, unique
names, the room limit, resuming anywhere, and a process lost with kill -9.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import ConnectionClosed

from salon.server.api import ASK_SECONDS
from tests.integration.cluster import Cluster, eventually, note, salon_cluster
from tests.integration.peer import TIMEOUT
from tests.integration.server import RunningServer
from tests.integration.test_resume import Client, account_headers

LIMIT = 3  # max_room_members in these processes

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


@pytest.fixture(scope="module")
def salons(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One Redis and two processes for the module; each test gets them running and ready."""
    env = {"SALON_LIMITS__MAX_ROOM_MEMBERS": str(LIMIT)}
    with salon_cluster(tmp_path_factory.mktemp("scaling"), env=env) as running:
        yield running


@pytest.fixture
async def nodes(salons: Cluster) -> AsyncIterator[tuple[RunningServer, RunningServer]]:
    """(P1, P2) as the clients see them; the clients a test opened are closed after it."""
    salons.up()
    mark = len(Client.opened)
    logs = salons.log_marks()
    try:
        yield salons.nodes[0].as_server(), salons.nodes[1].as_server()
    finally:
        await asyncio.wait_for(Client.close_all(since=mark), 20)
        salons.print_logs(logs)


@pytest.fixture
def tag() -> str:
    """Names and rooms of one test: the processes outlive it, and reachable names are unique."""
    return secrets.token_hex(3)


# ----------------------------------------------------------------------------- helpers


async def seated(room: str, *where: tuple[RunningServer, str]) -> list[Client]:
    """Members greeted on the given processes and joined in this order, each having heard of
    the later ones."""
    members = [await Client.named(server, name) for server, name in where]
    await seated_as(room, *members)
    return members


async def seated_as(room: str, *members: Client) -> None:
    """Greeted ``members`` join ``room`` in this order, each hearing of the later ones."""
    for i, member in enumerate(members):
        await member.join(room)
        for earlier in members[:i]:
            assert (await earlier.expect("member_joined"))["member"]["id"] == member.id


async def relays(sender: Client, receiver: Client, **payload: Any) -> None:
    """A signal from ``sender`` arrives at ``receiver``, stamped, with its payload intact."""
    await sender.send(type="signal", to=receiver.id, **payload)
    try:
        got = await receiver.expect("signal")
    except TimeoutError:
        raise AssertionError(f"{sender.name}'s signal never reached {receiver.name}") from None
    assert got["from"] == sender.id, got
    for key, value in payload.items():
        assert got[key] == value, (key, got)


def other_presence(ours: set[str]) -> Any:
    """Presence news of names other tests left behind (the processes are shared)."""
    return lambda m: m["type"] == "presence_changed" and m["name"] not in ours


async def heard_until_closed(client: Client, timeout: float = 10.0) -> tuple[list[str], int | None]:
    """The types of the messages ``client`` got until the server closed it, and the code."""
    kinds: list[str] = []
    try:
        while True:
            kinds.append((await client.recv(timeout))["type"])
    except ConnectionClosed as closed:
        return kinds, closed.rcvd.code if closed.rcvd else None


# ----------------------------------------------------------------------------- the tests


async def test_a_room_split_across_two_processes_relays_signals_both_ways(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    room = f"split-{tag}"
    alice = await Client.named(p1, f"alice-{tag}")
    bob = await Client.named(p2, f"bob-{tag}")
    assert (await alice.join(room))["members"] == []
    joined = await bob.join(room)
    assert [(m["id"], m["polite"]) for m in joined["members"]] == [(alice.id, bob.id > alice.id)]
    seen = await alice.expect("member_joined")
    assert seen["member"]["id"] == bob.id and seen["member"]["polite"] is (alice.id > bob.id)

    await relays(alice, bob, description=OFFER)
    await relays(bob, alice, description=ANSWER)
    await relays(alice, bob, candidate=CANDIDATE)
    await relays(bob, alice, candidate=CANDIDATE)
    await bob.send(type="media", mic=True, camera=False, screen=False)
    got = await alice.expect("media")
    assert (got["from"], got["mic"], got["camera"]) == (bob.id, True, False)
    # A member of another room, on the same process as bob, cannot reach alice.
    eve = await Client.named(p2, f"eve-{tag}")
    await eve.join(f"elsewhere-{tag}")
    await eve.send(type="signal", to=alice.id, description=OFFER, ref="probe")
    assert (await eve.error("no_such_member"))["ref"] == "probe"
    await alice.silent(0.2)
    await bob.silent(0.1)


async def test_chat_from_both_processes_is_one_sequence_seen_by_everyone(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    members = await seated(
        f"chat-{tag}", (p1, f"alice-{tag}"), (p2, f"bob-{tag}"), (p2, f"carol-{tag}")
    )
    said = {m.id: [f"{m.name} says {i}" for i in range(5)] for m in members}

    async def say(member: Client) -> None:
        for text in said[member.id]:
            await member.send(type="chat", text=text)

    await asyncio.gather(*(say(m) for m in members))  # interleaved on the wire
    total = sum(len(texts) for texts in said.values())
    heard = {m.id: [await m.expect("chat") for _ in range(total)] for m in members}
    reference = [(c["seq"], c["from"], c["text"]) for c in heard[members[0].id]]
    assert [seq for seq, _, _ in reference] == list(range(1, total + 1)), reference
    for member in members:
        mine = [(c["seq"], c["from"], c["text"]) for c in heard[member.id]]
        assert mine == reference, f"{member.name} heard another sequence"
    for member in members:  # each sender's messages in the order sent, each exactly once
        assert [text for _, sender, text in reference if sender == member.id] == said[member.id]
    for member in members:
        await member.silent(0.2)


async def test_presence_is_one_list_and_its_changes_cross_processes(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    zed = await Client.named(p1, f"zed-{tag}")
    watcher = await Client.named(p2, f"wat-{tag}")
    await watcher.send(type="presence_watch", watch=True)
    names = (await watcher.expect("presence"))["names"]
    assert {zed.name, watcher.name} <= set(names), names
    assert len(names) == len(set(names)), f"a name listed twice: {names}"
    ours = {zed.name, watcher.name, f"yan-{tag}", f"ula-{tag}"}
    skip = other_presence(ours)

    yan = await Client.named(p1, f"yan-{tag}")  # arrives on the other process
    assert await watcher.until(lambda m: m["type"] == "presence_changed", skip=skip) == {
        "type": "presence_changed",
        "name": yan.name,
        "online": True,
        "reconnecting": False,
    }
    zed.drop()  # away: reconnecting, still online
    changed = await watcher.until(lambda m: m["type"] == "presence_changed", skip=skip)
    assert (changed["name"], changed["online"], changed["reconnecting"]) == (zed.name, True, True)
    await yan.ws.close()  # gone for good
    changed = await watcher.until(lambda m: m["type"] == "presence_changed", skip=skip)
    assert (changed["name"], changed["online"]) == (yan.name, False)

    # And the other way: a watcher on P1 hears of a name arriving on P2.
    other = await Client.named(p1, f"w1-{tag}")
    await other.send(type="presence_watch", watch=True)
    names = (await other.expect("presence"))["names"]
    assert {watcher.name, other.name} <= set(names), names  # P2's and its own
    ula = await Client.named(p2, f"ula-{tag}")
    changed = await other.until(
        lambda m: m["type"] == "presence_changed" and m["name"] == ula.name,
        skip=lambda m: m["type"] == "presence_changed",
    )
    assert (changed["online"], changed["reconnecting"]) == (True, False)


async def test_a_call_by_name_rings_across_processes_and_seats_both(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    alice = await Client.named(p1, f"alice-{tag}")
    bob = await Client.named(p2, f"bob-{tag}")
    await alice.send(type="call", name=bob.name.upper())
    ringing = await alice.expect("ringing")
    incoming = await bob.expect("incoming_call")
    assert incoming["call"] == ringing["call"]
    assert (incoming["from"], incoming["name"]) == (alice.id, alice.name)
    call = ringing["call"]

    await bob.send(type="call_accept", call=call)
    rooms = set()
    for member in (alice, bob):
        accepted = await member.expect("call_accepted")
        assert accepted["call"] == call
        rooms.add(accepted["room"])
    (room,) = rooms
    first = await alice.expect("joined")
    second = await bob.expect("joined")
    assert first["room"] == second["room"] == room and first["private"] is True
    assert [m["id"] for m in second["members"]] == [alice.id]
    assert (await alice.expect("member_joined"))["member"]["id"] == bob.id
    await relays(alice, bob, description=OFFER)
    await relays(bob, alice, description=ANSWER)

    # Nobody gets in from either process, even knowing the room's id; calling them is busy.
    for node in (p1, p2):
        eve = await Client.named(node, f"eve{node.port}-{tag}")
        await eve.send(type="join", room=room)
        await eve.error("no_such_room")
        await eve.send(type="call", name=alice.name)
        assert (await eve.expect("call_ended"))["reason"] == "busy"

    await alice.send(type="leave")
    assert (await alice.expect("call_ended"))["reason"] == "hangup"
    await alice.expect("left")
    assert (await bob.expect("member_left"))["id"] == alice.id
    assert (await bob.expect("call_ended"))["reason"] == "hangup"
    await bob.expect("left")


async def test_a_reachable_name_is_taken_on_every_process(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    for home, other in ((p1, p2), (p2, p1)):
        holder = await Client.named(home, f"nina{home.port}-{tag}")
        impostor = await Client.open(other)
        for variant in (holder.name, holder.name.upper(), f" {holder.name} "):
            await impostor.send(type="hello", versions=[1], name=variant, reachable=True)
            await impostor.error("name_taken")
        await impostor.send(type="join", room=f"r-{tag}")
        await impostor.error("hello_required")  # still not greeted: it may pick another name
        await holder.alive()

        await holder.ws.close()  # a clean close ends the place and frees the name everywhere

        async def takes_it(impostor: Client = impostor, name: str = holder.name) -> bool:
            await impostor.send(type="hello", versions=[1], name=name, reachable=True)
            answer = await impostor.recv()
            if answer["type"] == "welcome":
                return True
            assert (answer["type"], answer.get("code")) == ("error", "name_taken"), answer
            return False

        await eventually(takes_it, f"{holder.name} to be free on the other process")


async def test_the_room_member_limit_holds_across_processes(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    room = f"full-{tag}"
    where = [(p1, f"a-{tag}"), (p2, f"b-{tag}"), (p1, f"c-{tag}")]
    members = await seated(room, *where[:LIMIT])
    latecomers = []
    for node in (p2, p1):  # one more member, on either process, does not fit
        late = await Client.named(node, f"late{node.port}-{tag}")
        await late.send(type="join", room=room, ref="one-too-many")
        assert (await late.error("room_full"))["ref"] == "one-too-many"
        latecomers.append(late)
    for member in members:
        await member.silent(0.2)  # the room heard of nobody

    # A seat freed on one process is taken from the other.
    leaving = members[1]
    await leaving.send(type="leave")
    await leaving.expect("left")
    for member in (members[0], members[2]):
        assert (await member.expect("member_left"))["id"] == leaving.id
    joined = await latecomers[1].join(room)  # on P1; the seat was freed by a member on P2
    assert len(joined["members"]) == LIMIT - 1
    await latecomers[0].send(type="join", room=room)
    await latecomers[0].error("room_full")


async def test_a_member_resumes_on_the_other_process(
    nodes: tuple[RunningServer, RunningServer], tag: str
) -> None:
    p1, p2 = nodes
    room = f"resume-{tag}"
    alice, bob = await seated(room, (p1, f"alice-{tag}"), (p1, f"bob-{tag}"))
    current = bob
    for there in (p2, p1):  # to the other process, then back
        current.drop()
        assert (await alice.expect("member_reconnecting"))["id"] == bob.id
        back, welcome = await current.resume(server=there)
        assert (welcome["id"], welcome["name"]) == (bob.id, bob.name)
        assert welcome["resumed"]["room"] == room, welcome
        joined = await back.expect("joined")
        assert joined["room"] == room and [m["id"] for m in joined["members"]] == [alice.id]
        resumed = await alice.until(
            lambda m: m["type"] == "member_resumed",
            skip=lambda m: m["type"] == "member_reconnecting",  # never member_left
        )
        assert resumed["member"]["id"] == bob.id
        await relays(alice, back, candidate=CANDIDATE)
        await relays(back, alice, candidate=CANDIDATE)
        await back.send(type="chat", text=f"back on {there.port}")
        seqs = {(await m.expect("chat"))["seq"] for m in (alice, back)}
        assert len(seqs) == 1
        current = back
    await alice.silent(0.2)


@pytest.mark.parametrize("older", ["at_home", "piped"])
async def test_an_account_joining_on_the_other_process_takes_its_seat_over(
    nodes: tuple[RunningServer, RunningServer], tag: str, older: str
) -> None:
    """The same account in a second tab that lands on the other process (docs/PROTOCOL.md
    §2.8): its join takes the older place's seat, whether that place is on the room's home
    process or piped to it, and the room sees one person throughout."""
    p1, p2 = nodes if older == "at_home" else nodes[::-1]
    room = f"again-{tag}"
    headers = await account_headers(p1, f"acct{tag}")
    first = await Client.named(p1, "ignored", headers)
    bob = await Client.named(p2, f"bob-{tag}")
    if older == "at_home":  # the room's first member decides its home process
        await seated_as(room, first, bob)
    else:
        await seated_as(room, bob, first)

    second = await Client.open(p2, {**headers, "Origin": p2.base_url})  # the same session
    welcome = await second.hello("ignored", reachable=False)
    assert welcome["id"] != first.id
    await bob.alive()  # heard nothing of the new connection yet
    await first.alive()
    joined = await second.join(room)
    assert [m["id"] for m in joined["members"]] == [bob.id]  # not its own older place
    assert await first.closed_with() == 4005
    arrived = await bob.expect("member_joined")
    assert (arrived["member"]["id"], arrived.get("replaces")) == (second.id, first.id)
    for member in (bob, second):  # the newcomer too, which never listed the older place
        left = await member.until(
            lambda m: m["type"] == "member_left", skip=lambda m: m["type"] == "room_state"
        )
        assert left["id"] == first.id
    await relays(bob, second, candidate=CANDIDATE)
    await relays(second, bob, candidate=CANDIDATE)
    await bob.silent(0.2)


async def test_the_server_api_sees_and_acts_on_the_meetings_of_every_process(
    nodes: tuple[RunningServer, RunningServer], salons: Cluster, tag: str
) -> None:
    """Whichever process an API request reaches, it answers for the deployment
    (docs/OPERATIONS.md "Meetings"): the other process's meetings are listed and shown, and a
    member of one is removed and it is ended there, with that process's own answers (404
    ``no_such_member``) carried back."""
    p1, p2 = nodes
    here, there = f"api1-{tag}", f"api2-{tag}"
    (alice,) = await seated(here, (p1, f"alice-{tag}"))  # at home on P1
    bob, carol = await seated(there, (p2, f"bob-{tag}"), (p2, f"carol-{tag}"))  # on P2
    key = {"Authorization": f"Bearer {await salons.api_key()}"}
    api1, api2 = salons.nodes[0].http(), salons.nodes[1].http()
    async with api1, api2:
        for api in (api1, api2):
            listed = (await api.get("/api/v1/meetings", headers=key)).json()["meetings"]
            ours = {m["id"]: m["members"] for m in listed if m["id"] in (here, there)}
            assert ours == {here: 1, there: 2}, listed
        shown = (await api1.get(f"/api/v1/meetings/{there}", headers=key)).json()
        assert shown["live"] is True
        assert [m["id"] for m in shown["members"]] == [bob.id, carol.id]
        shown = (await api2.get(f"/api/v1/meetings/{here}", headers=key)).json()
        assert [m["id"] for m in shown["members"]] == [alice.id]

        nobody = await api1.delete(f"/api/v1/meetings/{there}/members/{alice.id}", headers=key)
        assert nobody.status_code == 404 and nobody.json()["detail"]["code"] == "no_such_member"
        removed = await api1.delete(f"/api/v1/meetings/{there}/members/{bob.id}", headers=key)
        assert removed.status_code == 204, removed.text
        assert (await bob.expect("left"))["reason"] == "removed"
        assert (await carol.expect("member_left"))["id"] == bob.id
        told = await carol.until(  # bob hosted: the role passes on (room_state, host_passed)
            lambda m: m["type"] == "room_event" and m["action"] == "removed",
            skip=lambda m: m["type"] == "room_state" or m.get("action") == "host_passed",
        )
        assert (told["target"], told["by"]) == (bob.id, None)

        ended = await api2.post(f"/api/v1/meetings/{here}/end", headers=key)
        assert ended.status_code == 204, ended.text
        assert (await alice.expect("left"))["reason"] == "ended"
        assert (await api1.post(f"/api/v1/meetings/{there}/end", headers=key)).status_code == 204
        assert (await carol.expect("left"))["reason"] == "ended"
        for api in (api1, api2):
            listed = (await api.get("/api/v1/meetings", headers=key)).json()["meetings"]
            assert not [m for m in listed if m["id"] in (here, there)], listed
            again = await api.post(f"/api/v1/meetings/{there}/end", headers=key)
            assert again.status_code == 404, again.text
    for member in (alice, carol):
        await member.silent(0.1)


async def test_a_process_that_does_not_answer_the_server_api_is_a_503_after_a_bound(
    tmp_path: Path,
) -> None:
    """A process that runs but does not answer (stopped with SIGSTOP: its Redis key lives on,
    the heartbeat here is 5 s) makes the list a typed 503 after ``ASK_SECONDS``, not a hang
    nor a list without its meetings; once it answers again, so does the list."""
    env = {"SALON_BUS_HEARTBEAT_SECONDS": "5"}
    with salon_cluster(tmp_path, env=env) as cluster:
        cluster.up()
        key = {"Authorization": f"Bearer {await cluster.api_key()}"}
        stopped = cluster.nodes[1].process.pid
        async with cluster.nodes[0].http(timeout=ASK_SECONDS + 5) as api:
            os.kill(stopped, signal.SIGSTOP)
            try:
                began = time.monotonic()
                listed = await api.get("/api/v1/meetings", headers=key)
                waited = time.monotonic() - began
            finally:
                os.kill(stopped, signal.SIGCONT)
            assert listed.status_code == 503, listed.text
            assert listed.json()["detail"]["code"] == "bus_unavailable"
            assert ASK_SECONDS <= waited < ASK_SECONDS + 2, waited
            assert (await api.get("/api/v1/meetings", headers=key)).status_code == 200


async def test_kill_9_of_the_rooms_home_seats_everyone_again_on_the_other(
    nodes: tuple[RunningServer, RunningServer], salons: Cluster, tag: str
) -> None:
    p1, p2 = nodes
    room = f"kill-{tag}"
    alice, bob, carol = await seated(
        room, (p1, f"alice-{tag}"), (p2, f"bob-{tag}"), (p2, f"carol-{tag}")
    )  # alice came first: the room's home is P1; bob and carol are piped to it
    await bob.send(type="chat", text="before")
    for member in (alice, bob, carol):
        assert (await member.expect("chat"))["seq"] == 1
    assert len(salons.keys("salon:proc:*")) == 2

    salons.nodes[0].process.kill()
    note("P1 killed")
    # The front of bob and carol closes their sockets with 1012: their home is gone.
    for member in (bob, carol):
        heard, code = await heard_until_closed(member)
        assert code == 1012, (member.name, code, heard)
        assert "member_left" not in heard, (member.name, heard)

    async def one_process_left() -> bool:
        return len(salons.keys("salon:proc:*")) == 1

    await eventually(one_process_left, "P1's key to expire", timeout=5)

    bob2, welcome = await bob.resume(server=p2)
    assert welcome["id"] == bob.id and welcome["resumed"]["room"] == room, welcome
    joined = await bob2.expect("joined")
    assert joined["room"] == room and joined["members"] == []
    assert joined["last_seq"] == 1 and [m["text"] for m in joined["history"]] == ["before"]

    carol2, welcome = await carol.resume(server=p2)
    assert welcome["id"] == carol.id and welcome["resumed"]["room"] == room, welcome
    joined = await carol2.expect("joined")
    assert [m["id"] for m in joined["members"]] == [bob.id]
    assert (await bob2.expect("member_resumed"))["member"]["id"] == carol.id  # not joined

    alice2, welcome = await alice.resume(server=p2)  # her socket died with P1
    assert welcome["id"] == alice.id and welcome["resumed"]["room"] == room, welcome
    joined = await alice2.expect("joined")
    assert sorted(m["id"] for m in joined["members"]) == sorted([bob.id, carol.id])
    assert joined["hosts"] == [alice.id]  # her token says she hosted
    for member in (bob2, carol2):
        resumed = await member.expect("member_resumed", timeout=TIMEOUT)
        assert resumed["member"]["id"] == alice.id
        assert (await member.expect("room_state"))["hosts"] == [alice.id]

    await relays(alice2, bob2, description=OFFER)
    await alice2.send(type="chat", text="after")
    for member in (alice2, bob2, carol2):
        assert (await member.expect("chat"))["seq"] == 2  # one numbering, continued
    for member in (alice2, bob2, carol2):
        await member.silent(0.2)  # no member_left, nothing else
