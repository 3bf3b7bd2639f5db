"""The Janus router's bookkeeping of a member's subscriptions (salon.server.sfu), with the
request to Janus itself left out: tests/turn/test_sfu_rooms.py has the real Janus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from salon.protocol import Outgoing
from salon.server.janus import SfuLink
from salon.server.sfu import JanusRouter, _Place


@dataclass
class FakeMember:
    id: str
    name: str
    pushed: list[Outgoing] = field(default_factory=list)

    def push(self, out: Outgoing) -> None:
        self.pushed.append(out)


async def test_a_stream_a_queued_subscription_takes_is_not_asked_for_again() -> None:
    """A member that does not answer holds its next subscription back (up to 10 s): the
    publisher events that come meanwhile about the same streams add no task of their own."""
    router = JanusRouter(
        "ws://127.0.0.1:1",
        None,
        None,
        SfuLink("ws://127.0.0.1:1", None),
        mesh_limit=2,
        max_members=10,
    )
    member: Any = FakeMember("dan", "Dan")
    place = _Place(member, "room", "room@1", 0, session=1)
    router._places[member.id] = place
    asked: list[list[tuple[str, str]]] = []
    answer = asyncio.Event()
    called = asyncio.Condition()

    async def subscribe_now(place: _Place, streams: list[tuple[str, str]]) -> None:
        async with called:
            asked.append(streams)
            called.notify_all()
        await answer.wait()  # the member's answer to the offer before, which does not come

    async def asked_times(n: int) -> None:
        async with asyncio.timeout(5), called:
            await called.wait_for(lambda: len(asked) >= n)

    router._subscribe_now = subscribe_now  # type: ignore[method-assign]
    bob = [("bob", "0"), ("bob", "1")]
    for _ in range(20):  # Janus's publisher events, each naming bob's streams
        router._want(place, bob)
    router._want(place, [("dan", "0")])  # its own: never
    router._want(place, [*bob, ("cy", "0")])  # only cy's is new
    await asked_times(2)
    assert asked == [bob, [("cy", "0")]]
    assert len(place.tasks) == 2
    assert place.pending == {*bob, ("cy", "0")}

    answer.set()  # they are done (here: without subscribing), so no longer pending
    await asyncio.gather(*place.tasks)
    assert place.pending == set()
    answer.clear()
    router._want(place, bob)  # still not subscribed: asked for again
    await asked_times(3)
    assert asked[-1] == bob
    assert place.pending == set(bob)
    for task in place.tasks:
        task.cancel()
    await asyncio.gather(*place.tasks, return_exceptions=True)
    assert place.pending == set()  # a cancelled subscription lets go of its streams too
