"""Hostile text stays text: display names and chat messages made of HTML and script payloads
are shown literally in tiles, the participant list, chat, join/leave announcements, the call
page, the incoming call's system notification, the page title, and where hosts act (knock
notices, the lobby list, notes, the participant menu, the removed/turned-away/ended pages);
hostile room links say they are not a meeting; chat links open only the http(s) address they
show. Nothing runs: no dialog opens and no Content-Security-Policy violation is reported (an
injected inline handler would be blocked by the CSP and reported)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

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
        join_room(page, room, name, camera=False)
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


# The callee's tab is behind another (so a ringing call shows a system notification), and
# each notification the page makes is recorded, after the browser's own constructor ran.
IN_THE_BACKGROUND = """
document.hasFocus = () => false;
window.__notices = [];
const Shown = window.Notification;
window.Notification = class extends Shown {
  constructor(title, options) {
    super(title, options);
    window.__notices.push({ title, body: options?.body ?? null });
  }
};
"""


def test_hostile_names_on_the_call_page_and_in_a_call(person: Person) -> None:
    caller, callee = person(), person()
    names = [PAYLOADS[1], PAYLOADS[0]]
    callee.context.grant_permissions(["notifications"])
    callee.context.add_init_script(IN_THE_BACKGROUND)
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
    callee.wait_for_function("window.__notices.length > 0")
    assert callee.evaluate("window.__notices") == [
        {
            "title": f"{names[0]} is calling you",
            "body": "Incoming video call. Open Salon to answer.",
        }
    ]
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


# Room links a stranger can send: markup in the path (percent-encoded, as a browser sends it),
# quotes, a broken escape, an id far over the 64 characters a room id may have, and a valid id
# with markup in the fragment (read by the page for invitations) and in the query.
HOSTILE_ROOM_LINKS = [
    "/r/" + quote(PAYLOADS[0], safe=""),
    "/r/" + quote(PAYLOADS[1], safe=""),
    "/r/%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "/r/%%3Cimg",
    "/r/" + "a" * 65,
    "/r/" + quote(PAYLOADS[0] * 400, safe=""),
]


def test_a_hostile_room_link_says_it_is_not_a_meeting(person: Person) -> None:
    page = person()
    watch_csp(page)
    page.goto("/")
    prove_watchers_work(page)
    for link in HOSTILE_ROOM_LINKS:
        answer = page.goto(link)
        assert answer is not None and answer.status == 404, link
        page.get_by_test_id("not-a-meeting").wait_for()
        shown = page.locator("body").inner_text()
        assert "This link is not a meeting" in shown, link
        assert page.title() == "This link is not a meeting · Salon", link
        assert "onerror" not in shown and "<svg" not in shown and "<script" not in shown, link
        assert_nothing_ran(page)
    # A real id with markup after it: the pre-join page, and the markup nowhere.
    for link in (f"/r/x7Gq2LmP9aBc#invite={quote(PAYLOADS[0])}", f"/r/x7Gq2LmP9aBc?{PAYLOADS[1]}"):
        page.goto(link)
        page.get_by_test_id("prejoin").wait_for()
        assert "onerror" not in page.locator("body").inner_text()
        assert "<" not in page.title() and "onerror" not in page.title()
        assert_nothing_ran(page)


# http(s) links with hostile content: each becomes a link to exactly the address up to the
# first quote or angle bracket (or the whole encoded address), and the rest stays text.
HOSTILE_LINKS = [
    ('https://example.com/"onmouseover="alert(1)', "https://example.com/"),
    (
        "https://example.com/go?to=javascript:alert(1)",
        "https://example.com/go?to=javascript:alert(1)",
    ),
    ("http://example.com/?q=<img src=x onerror=alert(1)>", "http://example.com/?q="),
    ("https://example.com/#'><script>alert(1)</script>", "https://example.com/#"),
    (
        "https://example.com/%22%3E%3Csvg%20onload=alert(1)%3E",
        "https://example.com/%22%3E%3Csvg%20onload=alert(1)%3E",
    ),
    ("javascript://example.com/%0Aalert(1)", None),
    ("data:text/html,<script>alert(1)</script>", None),
]


def test_hostile_http_links_in_chat_open_only_what_they_show(person: Person) -> None:
    sender, reader = person(), person()
    for page in (sender, reader):
        watch_csp(page)
    room = new_room(sender)
    join_room(sender, room, "sender")
    join_room(reader, room, "reader")
    sender.get_by_role("button", name="Chat").click()
    box = sender.get_by_role("textbox", name="Message")
    for text, _ in HOSTILE_LINKS:
        box.fill(text)
        box.press("Enter")
    reader.get_by_role("button", name="Chat").click()
    expected = [href for _, href in HOSTILE_LINKS if href is not None]
    for page in (sender, reader):
        page.locator('[data-testid="chat-entry"]').nth(len(HOSTILE_LINKS) - 1).wait_for()
        assert texts(page, '[data-testid="chat-entry"] .chat-text') == [t for t, _ in HOSTILE_LINKS]
        links = page.get_by_role("log", name="Chat messages").locator("a")
        assert links.count() == len(expected)
        assert [a.get_attribute("href") for a in links.all()] == expected
        assert [a.text_content() for a in links.all()] == expected  # it shows what it opens
        for a in links.all():
            assert a.get_attribute("rel") == "noopener noreferrer nofollow"
            assert a.get_attribute("target") == "_blank"
        assert_nothing_ran(page)


HOST_ACT_PAYLOADS = ['<img src=x onerror=alert("host")>', "'><svg onload=alert(2)>", "<b>x</b>"]


def by_label(page: Any, label: str) -> Any:
    """The participant list's row of ``label`` (a selector cannot quote every hostile name)."""
    return page.get_by_test_id("person").filter(
        has=page.get_by_test_id("person-name").get_by_text(label, exact=True)
    )


def test_hostile_names_where_hosts_act(person: Person) -> None:
    """#10's places: knock notices, the Security panel's lobby list, notes of what hosts did,
    the participant menu and its confirmation, and the removed, turned-away and ended pages."""
    # Not PAYLOADS: the account test in this module registers PAYLOADS[0] as a display name,
    # which no guest may take afterwards.
    host_name, first_name, second_name = HOST_ACT_PAYLOADS
    host, first, second = person(), person(), person()
    for page in (host, first, second):
        watch_csp(page)
    host.goto("/")
    host.get_by_test_id("home-new-meeting").click()
    host.get_by_test_id("prejoin-host").wait_for()
    host.get_by_label("Your name").fill(host_name)
    host.get_by_test_id("prejoin-join").click()
    host.get_by_test_id("room").wait_for()
    room = host.url.rsplit("/", 1)[1]
    host.get_by_test_id("control-security").click()
    panel = host.get_by_test_id("security")
    panel.get_by_test_id("security-lobby").click()
    host.get_by_test_id("badge-lobby").wait_for()

    def knock(page: Any, name: str) -> None:
        page.goto(f"/r/{room}")
        page.get_by_label("Your name").fill(name)
        page.get_by_test_id("prejoin-join").click()
        page.get_by_test_id("lobby-waiting").wait_for()

    # Knocks: the lobby list (the panel is open, so no notice) shows each name as text.
    knock(first, first_name)
    waiting = panel.get_by_test_id("lobby-person")
    waiting.first.wait_for()
    assert waiting.first.get_attribute("data-name") == first_name
    assert waiting.first.inner_text().strip().startswith(first_name)
    panel.get_by_role("button", name=f"Admit {first_name}", exact=True).click()
    first.get_by_test_id("room").wait_for()
    host_note = host.get_by_test_id("room-note").filter(has_text=f"You let {first_name} in")
    host_note.first.wait_for()
    first_note = first.get_by_test_id("room-note").filter(has_text=f"{host_name} let you in")
    first_note.first.wait_for()
    assert first_note.first.inner_text() == f"{host_name} let you in"

    # With the panel closed, a knock is a notice.
    host.get_by_test_id("control-security").click()
    panel.wait_for(state="detached")
    knock(second, second_name)
    notice = host.get_by_test_id("knock-notice")
    notice.wait_for()
    assert notice.get_attribute("data-name") == second_name
    assert notice.inner_text().startswith(f"{second_name} wants to join")
    notice.get_by_role("button", name=f"Deny {second_name}", exact=True).click()
    turned_away = second.get_by_test_id("put-out")
    turned_away.wait_for()
    assert turned_away.get_attribute("data-reason") == "denied"
    host.get_by_test_id("room-note").filter(has_text=f"You did not let {second_name} in").wait_for()

    # The participant menu: mute, then the removal's confirmation, all naming the guest.
    host.get_by_test_id("control-people").click()
    row = by_label(host, first_name)
    row.get_by_role("button", name=f"Actions for {first_name}", exact=True).click()
    host.get_by_test_id("person-mute").click()
    muted = first.get_by_test_id("room-note").filter(has_text="muted your microphone")
    muted.first.wait_for()
    assert muted.first.inner_text() == f"{host_name} muted your microphone"
    row.get_by_role("button", name=f"Actions for {first_name}", exact=True).click()
    host.get_by_test_id("person-remove").click()
    confirm = host.get_by_role("group", name=f"Remove {first_name}?", exact=True)
    assert f"Remove {first_name} from the meeting?" in confirm.inner_text()
    assert_nothing_ran(host)
    confirm.get_by_test_id("confirm-remove-yes").click()
    removed = first.get_by_test_id("put-out")
    removed.wait_for()
    assert removed.get_by_test_id("put-out-message").inner_text() == (
        f"{host_name} removed you from this meeting"
    )

    # Ended: the turned-away guest knocks again, is let in from the notice, and the host ends.
    knock(second, second_name)
    host.get_by_test_id("knock-notice").get_by_role(
        "button", name=f"Admit {second_name}", exact=True
    ).click()
    second.get_by_test_id("room").wait_for()
    host.get_by_test_id("control-security").click()
    host.get_by_test_id("end-meeting").click()
    host.get_by_test_id("end-meeting-confirm").click()
    ended = second.get_by_test_id("put-out")
    ended.wait_for()
    assert ended.get_attribute("data-reason") == "ended"
    assert ended.get_by_test_id("put-out-message").inner_text() == (
        f"{host_name} ended the meeting for everyone"
    )
    for page in (host, first, second):
        assert_nothing_ran(page)
