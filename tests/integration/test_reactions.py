"""Reactions through the real server and real WebSocket clients (docs/PROTOCOL.md, reaction)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.test_hosts import heard, kinds, seated


async def test_a_reaction_reaches_the_room_and_a_flood_reaches_nobody(
    peers: Callable[..., Any],
) -> None:
    ann, bob = await seated(peers, "r", "ann", "bob")
    (eve,) = await seated(peers, "elsewhere", "eve")

    for _ in range(8):  # the default burst is 5
        await ann.send(type="reaction", reaction="party")

    shown = {"type": "reaction", "from": ann.id, "reaction": "party"}
    assert await heard(bob) == [shown] * 5
    own = await heard(ann)
    assert own[:5] == [shown] * 5
    assert [m["code"] for m in own[5:]] == ["rate_limited"] * 3
    assert await heard(eve) == []

    await bob.send(type="reaction", reaction="nope")
    assert [m.get("code") for m in await heard(bob)] == ["bad_message"]
    assert kinds(await heard(ann)) == []
