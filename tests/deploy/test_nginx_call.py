"""A two-person call and chat in Chromium, through nginx (WSS at nginx, HTTP to Salon).

Media is proven as in ``tests/e2e``: ``getStats()`` counters that rise, read through the
client's ``window.__salon`` hook.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.deploy.proxy import Proxied
from tests.e2e.conftest import (
    STATIC_INDEX,
    join_room,
    new_room,
    wait_for_media,
)
from tests.support import CHROMIUM, CHROMIUM_ARGS, launched_chromium

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium, closed at the end of this module (not held for the session)."""
    for missing, reason in (
        (not CHROMIUM.exists(), f"{CHROMIUM} is missing: install Debian's chromium"),
        (not STATIC_INDEX.exists(), "the browser client is not built: run 'make web' first"),
    ):
        if missing:
            print(reason)
            pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright, launched_chromium(playwright, CHROMIUM_ARGS) as browser:
        yield browser


def _person(browser: Any, proxied: Proxied, sockets: list[str]) -> Any:
    context = browser.new_context(
        base_url=proxied.https_url,
        ignore_https_errors=True,
        permissions=["camera", "microphone"],
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("websocket", lambda ws: sockets.append(ws.url))
    page.on("pageerror", lambda error: print("page error:", error))
    return page


def _send_chat(page: Any, text: str) -> None:
    if page.locator("#chat-input").count() == 0:
        page.get_by_role("button", name="Chat").click()
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def test_two_people_see_each_other_and_chat_through_nginx(chromium: Any, proxied: Proxied) -> None:
    sockets: list[str] = []
    ann = _person(chromium, proxied, sockets)
    ben = _person(chromium, proxied, sockets)
    try:
        room = new_room(ann)
        join_room(ann, room, "ann")
        join_room(ben, room, "ben")
        wait_for_media(ann, ["ben"])
        wait_for_media(ben, ["ann"])
        _send_chat(ann, "hello through the proxy")
        if ben.locator("#chat-input").count() == 0:
            ben.get_by_role("button", name="Chat").click()
        ben.get_by_text("hello through the proxy").wait_for()
        # Both signaling sockets went to nginx over TLS, never to Salon's own port.
        assert sockets, "no WebSocket was opened"
        assert set(sockets) == {f"wss://localhost:{proxied.https_port}/ws"}, sockets
    finally:
        ann.context.close()
        ben.context.close()
