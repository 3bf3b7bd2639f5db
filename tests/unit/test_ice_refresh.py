"""``ice_refresh``: a greeted member gets ICE servers issued now, for itself, with its ref."""

from __future__ import annotations

from salon.core.session import Session
from salon.protocol import ErrorCode
from salon.protocol.messages import IceServer, IceServers, Welcome

from .conftest import Client, FakeTransport, World


def _counting_client(world: World) -> tuple[Client, list[str]]:
    """A connection whose ICE servers carry a serial number, to tell issues apart."""
    asked: list[str] = []

    def ice_servers(member_id: str) -> list[IceServer]:
        asked.append(member_id)
        return [IceServer(urls=["turn:t.example:3478"], username=f"{len(asked)}:{member_id}")]

    transport = FakeTransport()
    return Client(Session(world.hub, transport, ice_servers), transport), asked


async def test_ice_refresh_answers_fresh_servers_for_the_member(world: World) -> None:
    client, asked = _counting_client(world)
    await client.send(type="hello", versions=[1], name="alice")
    welcome = client.take_one(Welcome)

    await client.send(type="ice_refresh", ref="r1")

    refreshed = client.take_one(IceServers)
    assert refreshed.ref == "r1"
    assert asked == [welcome.id, welcome.id]  # issued again, for this member only
    assert refreshed.ice_servers[0].username == f"2:{welcome.id}"
    assert welcome.ice_servers[0].username == f"1:{welcome.id}"


async def test_ice_refresh_before_hello_is_refused(world: World) -> None:
    client, asked = _counting_client(world)
    await client.send(type="ice_refresh", ref=7)
    error = client.take_error()
    assert (error.code, error.ref, asked) == (ErrorCode.HELLO_REQUIRED, 7, [])


async def test_ice_refresh_on_the_wire(world: World) -> None:
    client = await world.connect("alice")
    await client.send(type="ice_refresh")
    assert client.take_wire() == [
        {
            "type": "ice_servers",
            "ice_servers": [
                {"urls": ["stun:stun.example.org:3478"], "username": None, "credential": None}
            ],
            "ref": None,
        }
    ]
