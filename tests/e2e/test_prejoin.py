"""The pre-join page greets the server early (issue #17): in real Chromium, the room page opens
its signaling socket and says ``hello`` while the person is still on the pre-join page, and
pressing Join sends only ``join`` on that socket. Nobody sees the early socket: a presence
watcher and the room's members, both raw protocol clients, hear nothing of it until Join.
Leaving the pre-join page closes it. (A greeted socket that never joins is closed by the
server's idle deadline, tests/integration/test_abuse.py; the page then lets it go instead of
resuming it, web/src/room/early.test.ts.)"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import Person, join_room, new_room, register, tile, wait_for_media
from tests.e2e.test_accounts import PASSWORD
from tests.e2e.test_bad_peer import WAIT_S, Foreign

pytestmark = pytest.mark.e2e


class Sockets:
    """Every WebSocket a page opens to ``/ws``, with the client messages each sent and the
    message types it received (Playwright's ``websocket`` events, on Playwright's thread)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.sockets: list[Any] = []
        self.sent: list[list[dict[str, Any]]] = []
        self.received: list[list[str]] = []
        self._lock = threading.Lock()
        page.on("websocket", self._opened)

    def _opened(self, ws: Any) -> None:
        if not ws.url.endswith("/ws"):
            return
        with self._lock:
            index = len(self.sent)
            self.sockets.append(ws)
            self.sent.append([])
            self.received.append([])
        ws.on("framesent", lambda payload: self._sent(index, payload))
        ws.on("framereceived", lambda payload: self._received(index, payload))

    def _sent(self, index: int, payload: str | bytes) -> None:
        with self._lock:
            self.sent[index].append(json.loads(payload))

    def _received(self, index: int, payload: str | bytes) -> None:
        with self._lock:
            self.received[index].append(str(json.loads(payload).get("type")))

    def saying_hello_as(self, name: str) -> list[int]:
        """Indexes of the sockets that said ``hello`` under ``name``."""
        with self._lock:
            return [
                i
                for i, messages in enumerate(self.sent)
                if any(m.get("type") == "hello" and m.get("name") == name for m in messages)
            ]

    def greeted_early(self, name: str) -> int:
        """The one socket that said ``hello`` under ``name`` and got its ``welcome``, once the
        page marks its early greeting done."""
        self.page.wait_for_function(GREETED, timeout=WAIT_S * 1000)
        found = self.saying_hello_as(name)
        assert len(found) == 1, f"{len(found)} sockets said hello as {name}"
        with self._lock:
            assert "welcome" in self.received[found[0]]
        return found[0]

    def types(self, index: int) -> list[str]:
        with self._lock:
            return [str(m.get("type")) for m in self.sent[index]]


GREETED = "() => performance.getEntriesByName('salon:prejoin-greeted').length > 0"


def greeted(client: Foreign, name: str, **hello: Any) -> Foreign:
    client.send(type="hello", versions=[1], name=name, **hello)
    welcome = client.expect(lambda m: m["type"] == "welcome", "welcome")
    client.id = welcome["id"]
    return client


def heard_so_far(client: Foreign) -> list[dict[str, Any]]:
    """Everything ``client`` was sent before now: a ``ping`` answered by ``pong`` proves the
    server has written what it queued for it earlier."""
    client.send(type="ping")
    client.expect(lambda m: m["type"] == "pong", "pong")
    return list(client.seen)


def on_pre_join(page: Any, room: str, name: str, *, signed_in: bool = False) -> tuple[Sockets, int]:
    """Open ``room``'s pre-join page, type ``name`` (``signed_in``: the account's name is
    there already), and wait until the page has greeted the server early; returns the page's
    sockets and the index of the early one."""
    sockets = Sockets(page)
    page.goto(f"/r/{room}")
    if not signed_in:
        page.get_by_label("Your name").fill(name)
    return sockets, sockets.greeted_early(name)


@pytest.fixture
def watcher(server: str) -> Iterator[Foreign]:
    client = greeted(Foreign(server), "watcher")
    client.send(type="presence_watch", watch=True)
    client.expect(lambda m: m["type"] == "presence", "presence")
    yield client
    client.close()


def test_the_pre_join_page_greets_early_unseen_and_join_uses_that_socket(
    person: Person, server: str, watcher: Foreign
) -> None:
    page = person()
    room = new_room(page)
    bob = greeted(Foreign(server), "bob")
    try:
        bob.send(type="join", room=room)
        bob.expect(lambda m: m["type"] == "joined", "joined")
        sockets, early = on_pre_join(page, room, "ann")
        page.get_by_role("button", name="Join now").and_(page.locator(":enabled")).wait_for()

        # Greeted (the server has answered its hello) and unseen: no presence change, no
        # member_joined, and it has sent nothing but its hello.
        assert not any(m["type"] == "presence_changed" for m in heard_so_far(watcher))
        assert not any(m["type"] == "member_joined" for m in heard_so_far(bob))
        assert sockets.types(early) == ["hello"]

        page.get_by_role("button", name="Join now").click()
        page.get_by_test_id("room").wait_for()
        joined = bob.expect(lambda m: m["type"] == "member_joined", "member_joined")
        assert joined["member"]["name"] == "ann"
        # Join went on the early socket: one hello as ann, then its join on the same socket.
        assert sockets.saying_hello_as("ann") == [early]
        assert sockets.types(early)[:2] == ["hello", "join"]
        assert not sockets.sockets[early].is_closed()
        assert not any(m["type"] == "presence_changed" for m in heard_so_far(watcher))
    finally:
        bob.close()


def test_leaving_the_pre_join_page_closes_its_socket(
    person: Person, server: str, watcher: Foreign
) -> None:
    page = person()
    sockets, early = on_pre_join(page, new_room(page), "cat")
    with sockets.sockets[early].expect_event("close", timeout=WAIT_S * 1000):
        page.get_by_test_id("brand-home").click()  # back to the home page, in the page
    page.get_by_role("button", name="New meeting").wait_for()
    assert sockets.types(early) == ["hello"]  # it never joined
    assert not any(m["type"] == "presence_changed" for m in heard_so_far(watcher))


MOST_TILES_WATCH = """(name) => {
  const count = () =>
    document.querySelectorAll(`[data-testid="tile"][data-member="${name}"]`).length;
  window.__mostTiles = count();
  new MutationObserver(() => {
    window.__mostTiles = Math.max(window.__mostTiles, count());
  }).observe(document.body, { childList: true, subtree: true, attributes: true });
}"""


def test_a_second_tab_leaves_a_signed_in_persons_call_alone_until_it_joins(
    person: Person,
) -> None:
    """The same account in two tabs: the second tab's pre-join page (its connection check and
    its early greeting, both signed in) ends nothing; its Join takes the person's seat over,
    and the first tab says why it is out (docs/PROTOCOL.md §2.8)."""
    first = person()
    register(first, "twotabs_e2e", PASSWORD, "Tess")
    room = new_room(first)
    bob = person()
    join_room(bob, room, "bob")
    first.goto(f"/r/{room}")
    first.get_by_role("button", name="Join now").click()
    first.get_by_test_id("room").wait_for()
    wait_for_media(bob, ["Tess"])

    second = first.context.new_page()  # same browser, same session cookie
    sockets, early = on_pre_join(second, room, "Tess", signed_in=True)
    checked = second.get_by_test_id("connection-check").and_(second.locator("[data-step=done]"))
    checked.wait_for(state="attached")
    checks = [i for i, sent in enumerate(sockets.sent) if i != early and sent]
    assert checks, "the connection check said no hello"
    assert sockets.types(early) == ["hello"]
    # The first tab's call goes on: bob still decodes it, and it is still in the room.
    wait_for_media(bob, ["Tess"])
    wait_for_media(first, ["bob"])
    assert first.get_by_test_id("room").is_visible()
    assert tile(bob, "Tess").count() == 1

    # bob pins Tess: the pin must follow her to her new connection.
    tile(bob, "Tess").hover()
    tile(bob, "Tess").get_by_test_id("tile-pin").click()
    tile(bob, "Tess").and_(bob.locator('[data-place="main"]')).wait_for()
    # bob's page notes the most "Tess" tiles it ever shows at once (a DOM observer sees every
    # React commit): the room must see the person once throughout (member_joined.replaces).
    bob.evaluate(MOST_TILES_WATCH, "Tess")
    second.get_by_role("button", name="Join now").click()
    second.get_by_test_id("room").wait_for()
    first.get_by_text("was opened in another tab or window").wait_for()
    # Closed before the second tab was seated: the first never showed it as a peer.
    assert tile(first, "Tess").count() == 1  # itself only
    assert first.get_by_test_id("tile").count() == 2  # and bob
    assert sockets.types(early)[:2] == ["hello", "join"]  # on its early socket
    wait_for_media(second, ["bob"])
    wait_for_media(bob, ["Tess"])  # from the second tab now
    tile(bob, "Tess").wait_for()
    assert tile(bob, "Tess").count() == 1
    assert bob.evaluate("window.__mostTiles") == 1, "bob saw Tess twice at once"
    assert tile(bob, "Tess").get_attribute("data-pinned") == "true"
    assert tile(bob, "Tess").get_attribute("data-place") == "main"
