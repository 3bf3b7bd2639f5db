"""Which greeted members are idle (Hub.occupied; the server closes an idle connection after
LimitSettings.idle_greeted_seconds, tests/integration/test_abuse.py): one in no room, lobby
or call, not reachable by name and watching no presence."""

from __future__ import annotations

from salon.core.place import Place

from .conftest import Client, World
from .test_hosts import knock


def occupied(world: World, client: Client) -> bool:
    place = client.session.place
    assert isinstance(place, Place)
    return world.hub.occupied(place)


async def test_a_greeted_member_doing_nothing_is_idle(world: World) -> None:
    ann = await world.connect("ann")
    assert not occupied(world, ann)
    await ann.send(type="join", room="r")
    assert occupied(world, ann)
    await ann.send(type="leave")
    assert not occupied(world, ann)


async def test_reachable_watching_knocking_or_calling_is_not_idle(world: World) -> None:
    reachable = await world.connect("cat", reachable=True)
    assert occupied(world, reachable)
    watcher = await world.connect("dan")
    await watcher.send(type="presence_watch", watch=True)
    assert occupied(world, watcher)
    await watcher.send(type="presence_watch", watch=False)
    assert not occupied(world, watcher)

    (host,) = await world.connect_in("r", "host")
    await host.send(type="room_lobby", enabled=True)
    knocker = await knock(world, "eve")
    assert occupied(world, knocker)

    caller = await world.connect("fay")
    await caller.send(type="call", name="cat")  # rings: in a call, in no room yet
    assert occupied(world, caller)
