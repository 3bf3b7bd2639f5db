"""Hostile text stays text: display names and chat messages made of HTML and script payloads
are shown literally in tiles, the participant list, chat, join/leave announcements, the call
page and the page title, and nothing runs: no dialog opens and no Content-Security-Policy
violation is reported (an injected inline handler would be blocked by the CSP and reported)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import (
    Person,
    csp_violations,
    join_room,
    new_room,
    register,
    watch_csp,
)

pytestmark = pytest.mark.e2e

PAYLOADS = ["<img src=x onerror=alert(1)>", '"><svg onload=alert(1)>', "javascript:alert(1)"]

# Anything an injection would leave in the DOM: on* attributes, javascript: URLs, <img src=x>.
INJECTED = """() => {
  const all = [...document.querySelectorAll("*")];
  return [
    ...all.flatMap((el) =>
      [...el.attributes].filter((a) => /^on/i.test(a.name)).map((a) => `${el.tagName} ${a.name}`)),
    ...all.flatMap((el) => ["href", "src", "action", "formaction"]
      .map((n) => el.getAttribute(n))
      .filter((v) => v !== null && /^\\s*javascript:/i.test(v))),
    ...[...document.querySelectorAll('img[src="x"]')].map(() => "img src=x"),
  ];
}"""

# A positive control: an inline handler the CSP must block, proving the watcher hears it.
CSP_CONTROL = """() => new Promise((resolve) => {
  const img = document.createElement("img");
  img.setAttribute("onerror", "void 0");
  document.addEventListener("securitypolicyviolation", () => { img.remove(); resolve(); },
    { once: true });
  img.src = "data:,not-an-image";
  document.body.append(img);
})"""


def texts(page: Any, selector: str) -> list[str]:
    found: list[str] = page.locator(selector).all_text_contents()
    return found


def assert_nothing_ran(page: Any) -> None:
    page.wait_for_timeout(300)  # an onerror or onload would have fired by now
    assert page.evaluate(INJECTED) == []
    assert csp_violations(page) == []
    assert page.salon_dialogs == []


def prove_watchers_work(page: Any) -> None:
    """The dialog and CSP recorders can fail: each records a deliberate event, then is reset."""
    page.evaluate("setTimeout(() => alert('control'), 0)")
    page.wait_for_timeout(200)
    assert page.salon_dialogs == ["control"]
    page.salon_dialogs.clear()
    page.evaluate(CSP_CONTROL)
    assert csp_violations(page) != []
    page.evaluate("window.__cspViolations.length = 0")


def test_hostile_names_and_chat_are_shown_as_text_in_a_room(person: Person) -> None:
    pages = [person() for _ in PAYLOADS]
    for page in pages:
        watch_csp(page)
    room = new_room(pages[0])
    prove_watchers_work(pages[0])
    for page, name in zip(pages, PAYLOADS, strict=True):
        join_room(page, room, name)
    for page, name in zip(pages, PAYLOADS, strict=True):
        page.locator('[data-testid="tile"]').nth(len(PAYLOADS) - 1).wait_for()
        # Tiles: the data attribute and the caption carry each name exactly.
        members = page.eval_on_selector_all(
            '[data-testid="tile"]', "els => els.map(e => e.dataset.member)"
        )
        assert sorted(members) == sorted(PAYLOADS)
        captions = texts(page, '[data-testid="tile"] figcaption .text-truncate')
        assert sorted(captions) == sorted(n + " (you)" if n == name else n for n in PAYLOADS)
        assert page.title() == f"Meeting {room} · Salon"

    # Chat: each sends every payload's text in turn; everyone sees them literally, in order.
    for page, text in zip(pages, PAYLOADS, strict=True):
        page.get_by_role("button", name="Chat").click()
        page.get_by_role("textbox", name="Message").fill(text)
        page.get_by_role("textbox", name="Message").press("Enter")
        pages[0].locator('[data-testid="chat-entry"]').nth(PAYLOADS.index(text)).wait_for()
    for page, name in zip(pages, PAYLOADS, strict=True):
        page.locator('[data-testid="chat-entry"]').nth(len(PAYLOADS) - 1).wait_for()
        assert texts(page, '[data-testid="chat-entry"] .chat-text') == PAYLOADS
        assert texts(page, '[data-testid="chat-entry"] .chat-name') == [
            "You" if n == name else n for n in PAYLOADS
        ]
        chat = page.get_by_role("log", name="Chat messages")
        assert chat.locator("a").count() == 0  # javascript:alert(1) is not a link

    # The participant list.
    watcher = pages[0]
    watcher.get_by_role("button", name="Participants").click()
    people = texts(watcher, '[aria-label="Participants"] .people-row > span.flex-grow-1')
    assert people == [f"{PAYLOADS[0]} (you)", PAYLOADS[1], PAYLOADS[2]]

    # Leave announcements (the join's has faded by now), shown as text.
    pages[2].get_by_role("button", name="Leave").click()
    pages[2].get_by_test_id("left").wait_for()
    watcher.get_by_test_id("arrivals").get_by_text(f"{PAYLOADS[2]} left", exact=True).wait_for()
    for page in pages:
        assert_nothing_ran(page)


def test_hostile_names_on_the_call_page_and_in_a_call(person: Person) -> None:
    caller, callee = person(), person()
    names = [PAYLOADS[1], PAYLOADS[0]]
    for page, name in zip((caller, callee), names, strict=True):
        watch_csp(page)
        page.goto("/call")
        page.get_by_label("Your name").fill(name)
        page.get_by_role("button", name="Go online").click()
        assert page.get_by_test_id("my-id").text_content() == name
    online = caller.get_by_test_id("online")
    online.get_by_text(names[1], exact=True).wait_for()
    caller.get_by_role("button", name=f"Call {names[1]}").click()
    incoming = callee.get_by_test_id("incoming-call")
    incoming.get_by_text(f"{names[0]} is calling you").wait_for()
    incoming.get_by_role("button", name="Accept").click()
    caller.get_by_test_id("room").wait_for()
    assert caller.title() == f"Call with {names[1]} · Salon"
    assert callee.title() == f"Call with {names[0]} · Salon"
    for page in (caller, callee):
        assert_nothing_ran(page)


def test_a_hostile_account_display_name_is_text(person: Person) -> None:
    page = person()
    watch_csp(page)
    register(page, "xss_e2e", "correct horse battery", PAYLOADS[0])
    status = page.get_by_test_id("signed-in-name")
    assert status.text_content() == PAYLOADS[0]
    assert page.get_by_label("Your name").input_value() == PAYLOADS[0]
    page.goto("/account")
    assert page.get_by_test_id("account-display-name").text_content() == PAYLOADS[0]
    assert page.get_by_label("Display name", exact=True).input_value() == PAYLOADS[0]
    assert_nothing_ran(page)
