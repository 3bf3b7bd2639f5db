"""Three members in a room exchange offers, answers and candidates through the real server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.peer import Peer

OFFER = {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}
ANSWER = {"type": "answer", "sdp": "v=0\r\no=- 3 4 IN IP4 127.0.0.1\r\ns=-\r\n"}
CANDIDATE = {
    "candidate": "candidate:1 1 udp 2122260223 192.0.2.1 54321 typ host",
    "sdpMid": "0",
    "sdpMLineIndex": 0,
    "usernameFragment": "abcd",
}


async def test_three_members_mesh_signaling(peers: Callable[..., Any]) -> None:
    alice, bob, carol = await peers("alice", "bob", "carol")

    joined = await alice.join("team")
    assert joined["members"] == [] and joined["private"] is False

    # The greater member id is the polite side of each pair (§3.4), whoever came first.
    joined = await bob.join("team")
    assert [(m["id"], m["polite"]) for m in joined["members"]] == [(alice.id, bob.id > alice.id)]
    seen = await alice.expect("member_joined")
    assert seen["member"]["id"] == bob.id and seen["member"]["polite"] is (alice.id > bob.id)

    joined = await carol.join("team")
    assert [m["id"] for m in joined["members"]] == [alice.id, bob.id]
    assert [m["polite"] for m in joined["members"]] == [carol.id > alice.id, carol.id > bob.id]
    for old in (alice, bob):
        seen = await old.expect("member_joined")
        assert seen["member"] == {
            "id": carol.id,
            "name": "carol",
            "polite": old.id > carol.id,
            "media": {"mic": False, "camera": False, "screen": False},
            "signed_in": False,
        }

    # Every pair negotiates; the server stamps "from" (one a client writes is refused:
    # tests/integration/test_checklist_input.py).
    pairs = [(alice, bob), (alice, carol), (bob, carol)]
    for offerer, answerer in pairs:
        await offerer.send(type="signal", to=answerer.id, description=OFFER)
        got = await answerer.expect("signal")
        assert got["from"] == offerer.id and got["description"] == OFFER
        await answerer.send(type="signal", to=offerer.id, description=ANSWER)
        got = await offerer.expect("signal")
        assert got["from"] == answerer.id and got["description"] == ANSWER
        await offerer.send(type="signal", to=answerer.id, candidate=CANDIDATE)
        got = await answerer.expect("signal")
        assert got["from"] == offerer.id and got["candidate"] == CANDIDATE

    # Nobody received anything that was not addressed to them.
    for peer in (alice, bob, carol):
        await peer.silent(0.2)


async def test_leaving_and_disconnecting_tell_the_room(peers: Callable[..., Any]) -> None:
    alice, bob, carol = await peers("alice", "bob", "carol")
    for peer in (alice, bob, carol):
        await peer.join("r")
    await alice.expect("member_joined")
    await alice.expect("member_joined")
    await bob.expect("member_joined")

    await bob.send(type="leave")
    assert (await bob.expect("left"))["room"] == "r"
    for peer in (alice, carol):
        assert (await peer.expect("member_left"))["id"] == bob.id

    await carol.close()
    assert (await alice.expect("member_left"))["id"] == carol.id


async def test_media_state_broadcast_and_seen_by_late_joiner(peers: Callable[..., Any]) -> None:
    alice, bob, carol = await peers("alice", "bob", "carol")
    await alice.join("r", media={"mic": True, "camera": True, "screen": False})
    await bob.join("r")
    await alice.expect("member_joined")
    await alice.send(type="media", mic=False, camera=True, screen=True)
    got = await bob.expect("media")
    assert got == {"type": "media", "from": alice.id, "mic": False, "camera": True, "screen": True}
    await alice.silent(0.2)  # not echoed to the sender
    joined = await carol.join("r")
    assert joined["members"][0]["media"] == {"mic": False, "camera": True, "screen": True}


async def test_cross_room_signal_is_refused_like_a_missing_member(
    peers: Callable[..., Any],
) -> None:
    alice, bob, eve = await peers("alice", "bob", "eve")
    await alice.join("a")
    await bob.join("a")
    await alice.expect("member_joined")
    await eve.join("elsewhere")

    await eve.send(type="signal", to=alice.id, description=OFFER, ref="probe-1")
    real = await eve.error("no_such_member")
    await eve.send(type="signal", to="no-such-id", description=OFFER, ref="probe-2")
    fake = await eve.error("no_such_member")
    assert real["message"] == fake["message"]  # no way to tell "elsewhere" from "nowhere"
    assert (real["ref"], fake["ref"]) == ("probe-1", "probe-2")
    await alice.silent(0.2)
    await bob.silent(0.1)


async def test_name_takeover_is_refused(server: Any) -> None:
    alice = await Peer.greeted(server, "alice", reachable=True)
    for impostor_name in ("alice", "ALICE", " Alice ", "\uff21lice"):  # \uff21: fullwidth A
        impostor = await Peer.connect(server)
        await impostor.send(type="hello", versions=[1], name=impostor_name, reachable=True)
        await impostor.error("name_taken")
        # Still connected, still ungreeted: it may pick another name.
        await impostor.send(type="join", room="r")
        await impostor.error("hello_required")
        await impostor.close()
    # The real alice is untouched and reachable by name.
    bob = await Peer.greeted(server, "bob")
    await bob.send(type="call", name="alice")
    await bob.expect("ringing")
    assert (await alice.expect("incoming_call"))["name"] == "bob"
    # Once alice is gone, her name is free again.
    await alice.close()
    assert (await bob.expect("call_ended"))["reason"] == "offline"
    again = await Peer.greeted(server, "alice", reachable=True)
    assert again.name == "alice"
    await again.close()
    await bob.close()


async def test_rejected_and_reset_are_relayed_stamped_and_need_exactly_one_payload(
    peers: Callable[..., Any],
) -> None:
    alice, bob = await peers("alice", "bob")
    await alice.join("recover")
    await bob.join("recover")
    await alice.expect("member_joined")
    rejected = {"type": "offer", "message": "Failed to parse SessionDescription."}
    await alice.send(type="signal", to=bob.id, rejected=rejected)
    got = await bob.expect("signal")
    assert (got["from"], got["rejected"], got["description"], got["reset"]) == (
        alice.id,
        rejected,
        None,
        None,
    )
    await bob.send(type="signal", to=alice.id, reset={"reason": "rejected"})
    got = await alice.expect("signal")
    assert (got["from"], got["reset"], got["candidate"]) == (bob.id, {"reason": "rejected"}, None)
    # Two payloads, an unknown reason, an over-long message: refused, nothing relayed.
    for bad in (
        {"reset": {"reason": "ice_failed"}, "candidate": CANDIDATE},
        {"reset": {"reason": "because"}},
        {"rejected": {"type": "offer", "message": "x" * 257}},
    ):
        await alice.send(type="signal", to=bob.id, **bad)
        await alice.error("bad_message")
    await bob.silent(0.2)
