"""Rooms: (b) four people, (c) chat, (d) leaving, (e) screen share, (f) mute, (g) no camera."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import (
    Person,
    join_room,
    new_room,
    screenshot,
    screenshots,
    stats,
    tile,
    wait_for_media,
)

pytestmark = pytest.mark.e2e

XSS = "<img src=x onerror=alert(1)>"

# Records (in window.__goneAt) the wall time at which a member's tile leaves the page.
GONE_WATCH = """(name) => {
  const selector = `[data-testid="tile"][data-member="${name}"]`;
  const observer = new MutationObserver(() => {
    if (!document.querySelector(selector)) {
      window.__goneAt = Date.now();
      observer.disconnect();
    }
  });
  observer.observe(document.body, { childList: true, subtree: true });
}"""


def send_chat(page: Any, text: str) -> None:
    if page.locator("#chat-input").count() == 0:
        page.get_by_role("button", name="Chat").click()
    box = page.get_by_role("textbox", name="Message")
    box.fill(text)
    box.press("Enter")


def chat_texts(page: Any) -> list[str]:
    texts: list[str] = page.locator('[data-testid="chat-entry"] .chat-text').all_inner_texts()
    return texts


def test_four_people_each_decode_all_three_remote_videos(person: Person) -> None:
    names = ["ann", "ben", "cat", "dan"]
    pages = [person() for _ in names]
    room = new_room(pages[0])
    pages[0].goto(f"/r/{room}")
    pages[0].get_by_label("Your name").fill("ann")
    pages[0].get_by_test_id("room-status").get_by_text("No one else is here yet").wait_for()
    pages[0].get_by_role("button", name="Join now").and_(pages[0].locator(":enabled")).wait_for()
    pages[0].get_by_role("combobox", name="Camera").get_by_text("fake", exact=False).first.wait_for(
        state="attached"
    )
    pages[0].wait_for_timeout(500)
    screenshot(pages[0], "prejoin")
    for page, name in zip(pages, names, strict=True):
        join_room(page, room, name)
    for page, name in zip(pages, names, strict=True):
        wait_for_media(page, [n for n in names if n != name])
    for page, name in zip(pages, names, strict=True):
        for other in names:
            if other != name:
                assert tile(page, other).count() == 1
    send_chat(pages[1], "Morning all! Agenda: https://example.com/agenda")
    send_chat(pages[0], "Hi Ben, starting in a minute.")
    pages[0].get_by_text("starting in a minute").wait_for()
    screenshots(pages[0], "room")


def test_chat_is_text_ordered_and_replayed_to_a_late_joiner(person: Person) -> None:
    eve, fay, gus = person(), person(), person()
    room = new_room(eve)
    for page, name in ((eve, "eve"), (fay, "fay"), (gus, "gus")):
        join_room(page, room, name, camera=False)
    send_chat(eve, "hello from eve")
    fay.get_by_test_id("unread").get_by_text("1").wait_for()  # fay has chat closed
    send_chat(fay, XSS)
    send_chat(gus, "see https://example.org/x and javascript:alert(2)")
    expected = ["hello from eve", XSS, "see https://example.org/x and javascript:alert(2)"]
    for page in (eve, fay, gus):
        page.get_by_text("javascript:alert(2)").wait_for()
        assert chat_texts(page) == expected
        chat = page.get_by_role("log", name="Chat messages")
        assert chat.locator("img").count() == 0
        links = chat.locator("a")
        assert links.count() == 1
        assert links.first.get_attribute("href") == "https://example.org/x"
    # A late joiner gets the history on join.
    hal = person()
    join_room(hal, room, "hal", camera=False)
    hal.get_by_role("button", name="Chat").click()
    hal.get_by_text("javascript:alert(2)").wait_for()
    assert chat_texts(hal) == expected
    hal.wait_for_timeout(300)  # an onerror handler would have fired by now


def test_a_leaver_tile_disappears_for_the_others_within_two_seconds(person: Person) -> None:
    ida, jon, kim = person(), person(), person()
    room = new_room(ida)
    for page, name in ((ida, "ida"), (jon, "jon"), (kim, "kim")):
        join_room(page, room, name)
    wait_for_media(ida, ["jon", "kim"], audio=False)
    tile(jon, "kim").wait_for()
    for page in (ida, jon):
        page.evaluate(GONE_WATCH, "kim")
    leave = kim.get_by_role("button", name="Leave")
    leave.focus()
    left_at: float = kim.evaluate("Date.now()")
    kim.keyboard.press("Enter")  # the controls work from the keyboard
    for page in (ida, jon):
        tile(page, "kim").wait_for(state="detached", timeout=2000)
        gone_at: float = page.evaluate("window.__goneAt")
        assert gone_at - left_at < 2000, f"tile stayed {gone_at - left_at} ms"
    kim.get_by_test_id("left").wait_for()


def test_screen_share_is_seen_and_stopping_returns_to_the_camera(person: Person) -> None:
    lea, max_ = person(), person()
    room = new_room(lea)
    join_room(lea, room, "lea")
    join_room(max_, room, "max")
    wait_for_media(max_, ["lea"])
    lea.get_by_role("button", name="Share screen").click()
    lea_tile = tile(max_, "lea")
    lea_screen = max_.locator('[data-testid="screen-tile"][data-member="lea"]')
    lea_tile.and_(max_.locator('[data-screen="on"]')).wait_for()
    lea_screen.wait_for()
    wait_for_media(max_, ["lea"], field="screenFramesDecoded", audio=False)
    lea.get_by_role("button", name="Stop sharing screen").click()
    lea_tile.and_(max_.locator('[data-screen="off"]')).wait_for()
    lea_screen.wait_for(state="detached")
    screen_before = stats(max_)["lea"]["screenFramesDecoded"]
    wait_for_media(max_, ["lea"])  # the camera keeps coming
    assert stats(max_)["lea"]["screenFramesDecoded"] - screen_before < 5


def test_muting_the_mic_shows_the_muted_indicator_to_others(person: Person) -> None:
    ned, ola = person(), person()
    room = new_room(ned)
    join_room(ned, room, "ned")
    join_room(ola, room, "ola")
    ned_tile = tile(ola, "ned")
    ned_tile.wait_for()
    assert ned_tile.get_attribute("data-mic") == "on"
    assert ned_tile.get_by_test_id("mic-off").count() == 0
    ned.get_by_role("button", name="Mute microphone").click()
    ned_tile.get_by_test_id("mic-off").wait_for(timeout=3000)
    assert ned_tile.get_attribute("data-mic") == "off"
    ned.get_by_role("button", name="Unmute microphone").click()
    ned_tile.get_by_test_id("mic-off").wait_for(state="detached", timeout=3000)


def test_joining_with_the_camera_denied_still_gives_an_audio_call(person: Person) -> None:
    pat = person(deny_camera=True)
    quin = person()
    room = new_room(pat)
    pat.goto(f"/r/{room}")
    notice = pat.get_by_test_id("media-notice")
    notice.get_by_text("You will join with audio only").wait_for()
    assert "Camera: access was blocked" in notice.inner_text()
    join_room(pat, room, "pat")
    join_room(quin, room, "quin")
    wait_for_media(quin, ["pat"], video=False)  # pat's voice reaches quin
    wait_for_media(pat, ["quin"])  # and pat sees and hears quin
    assert tile(quin, "pat").get_attribute("data-camera") == "off"
    # Never a dead button: the camera button asks again (still blocked here, so still off).
    camera = pat.get_by_test_id("control-camera")
    assert camera.is_enabled()
    camera.click()
    assert tile(quin, "pat").get_attribute("data-camera") == "off"


def test_home_page(person: Person) -> None:
    page = person()
    page.goto("/")
    page.get_by_label("Your name").fill("Ada")
    screenshot(page, "home")
    page.get_by_role("button", name="New meeting").click()
    page.get_by_test_id("prejoin").wait_for()
    assert page.url.split("/r/")[1]
    assert page.get_by_label("Your name").input_value() == "Ada"  # remembered
