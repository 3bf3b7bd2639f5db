"""The Janus router's bookkeeping of a member's subscriptions (salon.server.sfu), with the
request to Janus itself left out: tests/turn/test_sfu_rooms.py has the real Janus."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from salon.protocol import Outgoing
from salon.server import sfu
from salon.server.janus import SfuLink
from salon.server.sfu import JanusRouter, _Place


@dataclass
class FakeMember:
    id: str
    name: str
    pushed: list[Outgoing] = field(default_factory=list)

    def push(self, out: Outgoing) -> None:
        self.pushed.append(out)


def _router() -> tuple[JanusRouter, _Place]:
    """A router (its Janus never reached) with dan's place in room@1."""
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
    return router, place


async def test_a_stream_a_queued_subscription_takes_is_not_asked_for_again() -> None:
    """A member that does not answer holds its next subscription back (up to 10 s): the
    publisher events that come meanwhile about the same streams add no task of their own."""
    router, place = _router()
    asked: list[list[tuple[str, str]]] = []
    answer = asyncio.Event()
    called = asyncio.Condition()

    async def subscribe_now(place: _Place, streams: list[tuple[str, str]]) -> list[Any]:
        async with called:
            asked.append(streams)
            called.notify_all()
        await answer.wait()  # the member's answer to the offer before, which does not come
        return []

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


async def test_a_join_made_again_asks_only_for_the_streams_still_published(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A subscriber join Janus did not answer is made again after a wait; a publisher that
    left meanwhile, and a stream its publisher stopped, are not asked for. Once it is done,
    nothing stays pending."""
    monkeypatch.setattr(sfu, "SUBSCRIBE_RETRY_SECONDS", (0.0, 0.0))
    router, place = _router()
    asked: list[list[tuple[str, str]]] = []
    tried = asyncio.Event()
    go_on = asyncio.Event()

    async def subscribe_now(place: _Place, streams: list[tuple[str, str]]) -> list[Any]:
        asked.append(streams)
        if len(asked) == 1:
            tried.set()
            await go_on.wait()
        return streams if len(asked) < 3 else []  # Janus answers the third

    router._subscribe_now = subscribe_now  # type: ignore[method-assign]
    streams = [("bob", "0"), ("bob", "1"), ("cy", "0"), ("cy", "1")]
    router._want(place, streams)
    await asyncio.wait_for(tried.wait(), 5)
    # Meanwhile cy leaves and bob stops his camera (Janus's publisher events).
    leaving = {"plugindata": {"data": {"videoroom": "event", "leaving": "cy"}}}
    router._publisher_event(place, leaving)
    stopped = [
        {
            "id": "bob",
            "streams": [
                {"mid": "0", "type": "audio"},
                {"mid": "1", "type": "video", "disabled": True},
            ],
        }
    ]
    router._publisher_event(place, {"plugindata": {"data": {"publishers": stopped}}})
    (task,) = place.tasks
    go_on.set()
    await asyncio.wait_for(task, 5)
    assert asked == [streams, [("bob", "0")], [("bob", "0")]]
    assert place.pending == set()
