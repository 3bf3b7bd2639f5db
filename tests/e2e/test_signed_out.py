"""A meeting open in one tab when the account signs out in another: the server closes the
socket with 4006 (docs/PROTOCOL.md §6.2), and the page says so instead of reconnecting as a
guest. It offers to sign in again (back to this meeting), or on a server that lets guests in,
to go on as a guest from the pre-join page, where a guest picks a name."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Person, new_room, register

pytestmark = pytest.mark.e2e

SIGN_OUT = (
    "fetch('/api/v1/csrf').then(r => r.json()).then(t => fetch('/api/v1/session',"
    " {method: 'DELETE', headers: {'X-CSRF-Token': t.token}})).then(r => r.status)"
)


def test_signing_out_in_another_tab_ends_the_meeting_here_and_says_so(person: Person) -> None:
    page = person()
    sockets: list[Any] = []
    page.on("websocket", lambda ws: sockets.append(ws))
    register(page, "signed_out_e2e", "correct horse battery", "Sign Out Sam")
    room = new_room(page)
    page.goto(f"/r/{room}")
    page.get_by_test_id("prejoin-join").click()
    page.get_by_test_id("room").wait_for()
    opened = len(sockets)
    other_tab = page.context.new_page()  # same browser, same session cookie
    other_tab.goto("/")
    assert other_tab.evaluate(SIGN_OUT) == 204
    other_tab.close()

    lost = page.get_by_test_id("lost")
    lost.wait_for()
    assert lost.get_attribute("data-reason") == "signed_out"
    assert "You were signed out" in lost.inner_text()
    assert page.get_by_test_id("lost-sign-in").get_attribute("href") == (
        f"/login?next=%2Fr%2F{room}"
    )
    page.get_by_test_id("lost-as-guest").wait_for()  # this server lets guests in
    # No reconnect. Waiting for something that must not happen: after a loss the client
    # tries at once, then after 0.3 s and 1.2 s (docs/PROTOCOL.md §2.8), all inside this.
    page.wait_for_timeout(1500)
    assert len(sockets) == opened, [ws.url for ws in sockets]

    page.get_by_test_id("lost-as-guest").click()
    page.get_by_test_id("prejoin").wait_for()
    page.get_by_test_id("sign-in-link").wait_for()  # the page is a guest's now
    assert page.get_by_label("Your name").input_value() == ""
