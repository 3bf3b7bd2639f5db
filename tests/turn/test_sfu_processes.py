"""A room on Janus whose members are on two Salon processes (issue #13 with issue #12): the
room's home process alone drives Janus for everyone in it, those on the other process through
the pipe between the processes (docs/SCALING.md), with the real ``janus``, a real
``redis-server``, two ``salon serve`` processes and members publishing with aiortc."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from salon.server.janus import JanusProcess
from tests.integration.cluster import Cluster, Node, eventually, salon_cluster
from tests.turn.sfu_member import SfuMember


@pytest.fixture(scope="module")
def salons(janus: JanusProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    config = janus.config
    env = {
        "SALON_SFU_URL": config.url,
        "SALON_SFU_API_SECRET": config.api_secret,
        "SALON_SFU_ADMIN_KEY": config.admin_key,
        "SALON_SFU_MESH_LIMIT": "2",
        "SALON_SFU_CHECK_SECONDS": "0.5",
    }
    folder: Path = tmp_path_factory.mktemp("sfu-processes")
    with salon_cluster(folder, env=env, http=True) as running:
        yield running


@pytest.fixture
async def members(salons: Cluster) -> AsyncIterator[Callable[..., Any]]:
    """``await members(0, "alice")``: a member greeted on process 0 or 1; closed after."""
    salons.up()
    for node in salons.nodes:  # a room moves to the SFU only while its home reaches Janus
        await eventually(_sfu_ok(node), f"{node.label} reaching Janus", timeout=15)
    made: list[SfuMember] = []

    async def make(node: int, name: str) -> SfuMember:
        member = await SfuMember.greeted(salons.nodes[node].as_server().ws_url, name)
        made.append(member)
        return member

    try:
        yield make
    finally:
        for member in made:
            await member.close()


def _sfu_ok(node: Node) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        status, body = await node.get("/api/v1/health")
        return status == 200 and body.get("sfu") == "ok"

    return check


async def test_members_on_two_processes_move_to_the_sfu_together_and_decode_each_other(
    members: Callable[..., Any], janus: JanusProcess
) -> None:
    alice = await members(0, "alice")
    bob = await members(1, "bob")
    carol = await members(1, "carol")
    assert (await alice.join("spread"))["sfu"] is False
    assert (await bob.join("spread"))["sfu"] is False  # two, one on each process: a mesh
    assert (await carol.join("spread"))["sfu"] is True  # the third passes the limit of 2
    for member in (alice, bob):
        assert await member.expect("room_media") == {
            "type": "room_media",
            "room": "spread",
            "sfu": True,
        }
    everyone = [alice, bob, carol]
    for member in everyone:
        await member.publish()
    for member in everyone:
        others = [m for m in everyone if m is not member]
        await member.decoding(others)
        assert {s["member"] for s in member.streams.values()} == {m.id for m in others}
    for member in everyone:  # the pipe carries no secret either
        assert janus.config.api_secret not in str(member.received)


async def test_kill_9_of_the_rooms_home_and_everyone_publishes_again_from_the_other(
    members: Callable[..., Any], salons: Cluster
) -> None:
    p2_url = salons.nodes[1].as_server().ws_url
    alice = await members(0, "alice")  # first in: the room's home is P1
    bob = await members(1, "bob")
    carol = await members(1, "carol")
    for member in (alice, bob, carol):
        await member.join("lost")
    everyone = [alice, bob, carol]
    for member in everyone:
        await member.publish()
    await alice.decoding([bob, carol])

    salons.nodes[0].process.kill()  # P1 and its Janus sessions are gone

    async def p1_known_dead() -> bool:  # its heartbeat key expired (docs/SCALING.md)
        return len(salons.keys("salon:proc:*")) == 1

    await eventually(p1_known_dead, "P1's key to expire", timeout=5)
    # Each takes its place back on P2, which rebuilds the room from their tokens: a mesh of
    # two again, then the third moves it to the SFU once more.
    for member in (bob, carol, alice):
        welcome = await member.resume(p2_url)
        assert welcome["id"] == member.id and welcome["resumed"]["room"] == "lost", welcome
    assert (await alice.expect("joined"))["sfu"] is True
    for member in (bob, carol):
        await member.expect("room_media")
    for member in everyone:
        await member.publish()
    for member in everyone:
        await member.decoding([m for m in everyone if m is not member])
    for member in everyone:
        assert "member_left" not in [m["type"] for m in member.received]
