"""Claims of docs/PROTOCOL.md that were once wrong, each held to the real server.

(The document's tables and examples are held to the code in tests/unit/test_protocol_doc.py.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.integration.peer import Peer


async def test_a_full_protected_room_checks_the_password_first(
    make_server: Callable[..., Any],
) -> None:
    """§5.1 `join`, errors in order: `wrong_password`, then `room_full` (no seat). A stranger
    with a wrong password learns nothing about the room's size; with the password, a full
    room answers `room_full`."""
    with make_server(max_room_members=2) as server:
        host = await Peer.greeted(server, "host")
        await host.join("guarded")
        await host.send(type="room_password", password="open sesame", ref=1)
        await host.expect("room_state")
        guest = await Peer.greeted(server, "guest")
        await guest.join("guarded", password="open sesame")
        late = await Peer.greeted(server, "late")
        await late.send(type="join", room="guarded", password="wrong", ref=2)
        assert (await late.error("wrong_password"))["ref"] == 2
        await late.send(type="join", room="guarded", ref=3)
        assert (await late.error("wrong_password"))["ref"] == 3
        await late.send(type="join", room="guarded", password="open sesame", ref=4)
        assert (await late.error("room_full"))["ref"] == 4
        await late.send(type="chat", text="am I in?")
        await late.error("not_joined")
        for peer in (host, guest, late):
            await peer.close()


async def test_a_guests_welcome_names_no_account(server: Any) -> None:
    """§5.2 `welcome`: `account` is always present, `null` for a guest (the example once left
    it out)."""
    peer = await Peer.connect(server)
    welcome = await peer.hello("guest")
    assert "account" in welcome and welcome["account"] is None
    await peer.close()


async def test_an_empty_binary_frame_is_binary_unsupported(server: Any) -> None:
    """§1.1: an *empty* binary frame is a binary frame too (the document once said
    `bad_json`); the connection stays open."""
    peer = await Peer.greeted(server, "alice")
    await peer.send_raw(b"")
    error = await peer.error("binary_unsupported")
    assert "ref" not in error or error["ref"] is None
    await peer.alive()
    await peer.close()
