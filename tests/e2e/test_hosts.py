"""Hosts, passwords, the lobby, removal, muting and ending a meeting, as both sides see them
(issue 10). One browser for the module, one context per person; the server is the shared one.

Every person here arrives through the pages a user uses: the home page's "New meeting" (which
keeps the host key), the pre-join page, the Security panel and the participant list's menu.
"""

from __future__ import annotations

import re
import time
from typing import Any

import pytest

from tests.e2e.conftest import Person, screenshots, stats, tile, wait_for_media

pytestmark = pytest.mark.e2e


def start_meeting(page: Any, name: str) -> str:
    """Home → "New meeting" → pre-join (as its host) → the room. Returns the room id."""
    page.goto("/")
    page.get_by_test_id("home-new-meeting").click()
    page.wait_for_url(re.compile(r"/r/[A-Za-z0-9_-]+$"))
    page.get_by_test_id("prejoin-host").wait_for()
    page.get_by_label("Your name").fill(name)
    page.get_by_test_id("prejoin-join").click()
    page.get_by_test_id("room").wait_for()
    room: str = page.url.rsplit("/", 1)[1]
    return room


def open_prejoin(page: Any, room: str, name: str) -> None:
    page.goto(f"/r/{room}")
    page.get_by_test_id("prejoin").wait_for()
    page.get_by_label("Your name").fill(name)


def enter(page: Any, room: str, name: str) -> None:
    """A guest's way in when nothing stands in the way."""
    open_prejoin(page, room, name)
    page.get_by_test_id("prejoin-join").click()
    page.get_by_test_id("room").wait_for()


def open_security(page: Any) -> Any:
    if page.get_by_test_id("security").count() == 0:
        page.get_by_test_id("control-security").click()
    panel = page.get_by_test_id("security")
    panel.wait_for()
    return panel


def person_action(page: Any, label: str, action: str) -> None:
    """Open the participant list's menu for ``label`` and choose ``action`` (a test id)."""
    if page.get_by_test_id("people").count() == 0:
        page.get_by_test_id("control-people").click()
    row = page.locator(f'[data-testid="person"][data-label="{label}"]')
    row.get_by_test_id("person-menu").click()
    page.get_by_test_id(action).click()


def note(page: Any, text: str) -> None:
    """Wait for a note of what a host did (they fade, so wait, never sample)."""
    page.get_by_test_id("room-note").filter(has_text=text).first.wait_for()


def bytes_sent(page: Any, to: str, kind: str) -> int:
    value: int = stats(page)[to][f"{kind}BytesSent"]
    return value


def sending(page: Any, to: str, kind: str, *, seconds: float = 1.5) -> bool:
    """Whether ``kind`` bytes toward ``to`` rise over ``seconds``."""
    before = bytes_sent(page, to, kind)
    page.wait_for_timeout(seconds * 1000)
    return bytes_sent(page, to, kind) > before


def wait_until_silent(page: Any, to: str, kind: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while sending(page, to, kind):
        if time.monotonic() > deadline:
            raise AssertionError(f"{kind} toward {to} kept rising: {stats(page)[to]}")


def test_a_password_set_in_the_security_panel_is_asked_on_the_pre_join_page(
    person: Person,
) -> None:
    ann, bob, cat = person(), person(), person()
    room = start_meeting(ann, "ann")
    panel = open_security(ann)
    panel.get_by_test_id("security-password").fill("tulip 42")
    panel.get_by_test_id("security-password-save").click()
    ann.get_by_test_id("badge-password").wait_for()
    note(ann, "You set a password for the meeting")

    open_prejoin(bob, room, "bob")
    status = bob.get_by_test_id("room-status")
    status.get_by_text("has a password.", exact=False).wait_for()
    assert not re.search(r"\d", status.inner_text()), "a protected room's head count leaked"
    bob.get_by_test_id("prejoin-password").fill("rose")
    bob.get_by_test_id("prejoin-join").click()
    bob.get_by_test_id("prejoin-password-error").get_by_text(
        "That password is not right."
    ).wait_for()
    assert bob.get_by_test_id("prejoin-password").input_value() == "rose"  # what was typed stays
    assert bob.get_by_test_id("room").count() == 0
    bob.get_by_test_id("prejoin-password").fill("tulip 42")
    bob.get_by_test_id("prejoin-join").click()
    bob.get_by_test_id("room").wait_for()
    tile(ann, "bob").wait_for()

    open_security(ann).get_by_test_id("security-password-remove").click()
    note(bob, "ann removed the meeting's password")
    ann.get_by_test_id("badge-password").wait_for(state="detached")
    open_prejoin(cat, room, "cat")
    cat.get_by_test_id("room-status").get_by_text("2 people are in this meeting").wait_for()
    assert cat.get_by_test_id("prejoin-password").count() == 0
    cat.get_by_test_id("prejoin-join").click()
    cat.get_by_test_id("room").wait_for()
    tile(bob, "cat").wait_for()


def test_a_locked_meeting_turns_newcomers_away_until_it_is_unlocked(person: Person) -> None:
    ann, dan = person(), person()
    room = start_meeting(ann, "ann")
    open_security(ann).get_by_test_id("security-lock").click()
    ann.get_by_test_id("badge-locked").wait_for()

    open_prejoin(dan, room, "dan")
    dan.get_by_test_id("room-locked").get_by_text("locked by its host", exact=False).wait_for()
    assert dan.get_by_test_id("prejoin-join").count() == 0

    open_security(ann).get_by_test_id("security-lock").click()
    ann.get_by_test_id("badge-locked").wait_for(state="detached")
    dan.get_by_test_id("room-locked-retry").click()
    dan.get_by_test_id("room-locked").wait_for(state="detached")
    dan.get_by_test_id("prejoin-join").click()
    dan.get_by_test_id("room").wait_for()
    tile(ann, "dan").wait_for()


def test_the_lobby_lets_a_host_admit_one_knock_and_deny_another(person: Person) -> None:
    ann, bob, cat = person(), person(), person()
    room = start_meeting(ann, "ann")
    panel = open_security(ann)
    panel.get_by_test_id("security-lobby").click()
    ann.get_by_test_id("badge-lobby").wait_for()

    open_prejoin(bob, room, "bob")
    knock = bob.get_by_test_id("prejoin-join")
    assert knock.inner_text() == "Ask to join"
    knock.click()
    bob.get_by_test_id("lobby-waiting").wait_for()
    waiting = panel.locator('[data-testid="lobby-person"][data-name="bob"]')
    waiting.wait_for()
    screenshots(bob, "lobby-waiting")
    screenshots(ann, "lobby-host")
    waiting.get_by_test_id("lobby-admit").click()
    bob.get_by_test_id("room").wait_for()
    tile(ann, "bob").wait_for()
    note(bob, "ann let you in")
    note(ann, "You let bob in")

    open_prejoin(cat, room, "cat")
    cat.get_by_test_id("prejoin-join").click()
    cat.get_by_test_id("lobby-waiting").wait_for()
    panel.locator('[data-testid="lobby-person"][data-name="cat"]').get_by_test_id(
        "lobby-deny"
    ).click()
    gone = cat.get_by_test_id("put-out")
    gone.wait_for()
    assert gone.get_attribute("data-reason") == "denied"
    assert "A host did not let you in" in gone.inner_text()
    ann.get_by_test_id("lobby-empty").wait_for()
    assert tile(ann, "cat").count() == 0


def test_a_removed_person_sees_why_and_the_link_only_leads_to_the_lobby(person: Person) -> None:
    ann, bob = person(), person()
    room = start_meeting(ann, "ann")
    enter(bob, room, "bob")
    tile(ann, "bob").wait_for()

    person_action(ann, "bob", "person-remove")
    ann.get_by_test_id("confirm-remove-yes").click()
    gone = bob.get_by_test_id("put-out")
    gone.wait_for()
    assert gone.get_attribute("data-reason") == "removed"
    assert "ann removed you from this meeting" in gone.inner_text()
    tile(ann, "bob").wait_for(state="detached")
    note(ann, "You removed bob")

    # The same link again: no way in but a host's yes.
    open_prejoin(bob, room, "bob")
    bob.get_by_test_id("prejoin-join").click()
    bob.get_by_test_id("lobby-waiting").wait_for()
    knock = ann.locator('[data-testid="knock-notice"][data-name="bob"]')
    knock.wait_for()
    assert knock.get_attribute("data-removed") == "true"
    assert "removed from this meeting earlier" in knock.inner_text()
    knock.get_by_test_id("knock-deny").click()
    bob.get_by_test_id("put-out").wait_for()
    assert tile(ann, "bob").count() == 0


def test_a_host_mutes_a_microphone_and_only_its_owner_turns_it_back_on(person: Person) -> None:
    ann, bob = person(), person()
    room = start_meeting(ann, "ann")
    enter(bob, room, "bob")
    wait_for_media(ann, ["bob"])
    assert sending(bob, "ann", "audio")

    person_action(ann, "bob", "person-mute")
    note(bob, "ann muted your microphone")
    bob.get_by_test_id("control-mic").and_(
        bob.get_by_role("button", name="Unmute microphone")
    ).wait_for()
    tile(ann, "bob").and_(ann.locator('[data-mic="off"]')).wait_for()
    wait_until_silent(bob, "ann", "audio")  # nothing at all goes out, not even silence
    assert sending(bob, "ann", "video")  # the camera was not touched

    # Only bob turns it back on.
    bob.get_by_test_id("control-mic").click()
    tile(ann, "bob").and_(ann.locator('[data-mic="on"]')).wait_for()
    assert sending(bob, "ann", "audio")
    wait_for_media(ann, ["bob"], video=False)


def test_a_host_ends_the_meeting_for_everyone(person: Person) -> None:
    ann, bob = person(), person()
    room = start_meeting(ann, "ann")
    enter(bob, room, "bob")
    tile(ann, "bob").wait_for()

    panel = open_security(ann)
    panel.get_by_test_id("end-meeting").click()
    panel.get_by_test_id("end-meeting-confirm").click()
    for page, text in ((bob, "ann ended the meeting for everyone"), (ann, "You ended")):
        gone = page.get_by_test_id("put-out")
        gone.wait_for()
        assert gone.get_attribute("data-reason") == "ended"
        assert text in gone.inner_text()


def test_two_people_with_one_name_are_told_apart(person: Person) -> None:
    ann, first, second = person(), person(), person()
    room = start_meeting(ann, "ann")
    enter(first, room, "Sam")
    enter(second, room, "Sam")
    labels = {"Sam", "Sam (2)"}
    for page in (ann, first, second):
        tiles = page.locator('[data-testid="tile"][data-member="Sam"]')
        tiles.nth(1).wait_for()
        assert {t.get_attribute("data-label") for t in tiles.all()} == labels
