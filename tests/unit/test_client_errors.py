"""Every server error code reaches the SDK's caller as a ServerError naming it, whichever
request it answers (docs/PROTOCOL.md §6.1); the client goes on working after it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from salon.client import Client, ServerError
from salon.protocol import ErrorCode
from salon.protocol.messages import Error
from tests.unit.client_fake import FakeServer, FakeSocket, Frame, seat

pytestmark = pytest.mark.timeout(20)

Request = Callable[[Client], Awaitable[object]]

REQUESTS: dict[str, Request] = {
    "join": lambda c: c.join("other"),
    "chat": lambda c: c.chat("hello"),
    "media": lambda c: c.set_media(mic=True),
    "call": lambda c: c.call("Bob"),
    "call_accept": lambda c: c.accept("k1"),
    "call_decline": lambda c: c.decline("k1"),
    "leave": lambda c: c.leave(),
}


def refuse_with(code: ErrorCode) -> Callable[[FakeSocket, Frame], None]:
    def reply(socket: FakeSocket, frame: Frame) -> None:
        socket.push(Error(code=code, message=f"refused: {code}", ref=frame["ref"]))

    return reply


@pytest.mark.parametrize("code", list(ErrorCode), ids=str)
async def test_each_error_code_fails_each_request_with_its_code(code: ErrorCode) -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()
    server.on("join", seat())
    await client.join("r")
    server.on("ping", lambda s, f: s.push({"type": "pong", "ref": f["ref"]}))
    for kind, request in REQUESTS.items():
        server.on(kind, refuse_with(code))
        with pytest.raises(ServerError) as refused:
            await request(client)
        assert (refused.value.code, refused.value.known_code) == (code.value, code), kind
        assert refused.value.ref == server.frames(kind)[-1]["ref"]
        assert refused.value.message == f"refused: {code}"
    # Nothing changed, and the client still works.
    assert client.room == "r" and client.lost is None
    server.on("join", seat())
    assert (await client.join("again")).room == "again"
    await client.close()


async def test_an_error_without_ref_fails_no_request() -> None:
    server = FakeServer()
    client = Client("https://salon.test", "Ada", connector=server.connector)
    await client.connect()

    def busy_then_seat(socket: FakeSocket, frame: Frame) -> None:
        socket.push(Error(code=ErrorCode.RATE_LIMITED, message="slow down", ref=None))
        seat()(socket, frame)

    server.on("join", busy_then_seat)
    assert (await client.join("r")).room == "r"
    await client.close()
