"""(a) A direct call by name: alice calls bob, bob accepts; media flows both ways."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Person, screenshot, wait_for_media

pytestmark = pytest.mark.e2e


def go_online(page: Any, name: str) -> None:
    page.goto("/call")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Go online").click()
    page.get_by_test_id("my-id").wait_for()
    assert page.get_by_test_id("my-id").inner_text() == name


def dial(page: Any, name: str) -> None:
    page.get_by_label("Enter peer name to call").fill(name)
    page.get_by_role("button", name="Call", exact=True).click()


def test_alice_calls_bob_and_both_get_video_and_audio(person: Person) -> None:
    alice, bob = person(), person()
    go_online(alice, "alice")
    go_online(bob, "bob")
    alice.get_by_test_id("online").get_by_text("bob").wait_for()
    dial(alice, "bob")
    alice.get_by_test_id("call-status").get_by_text("Ringing bob").wait_for()
    incoming = bob.get_by_test_id("incoming-call")
    incoming.get_by_text("alice is calling you").wait_for()
    screenshot(bob, "incoming-call")
    incoming.get_by_role("button", name="Accept").click()
    alice.get_by_test_id("room").wait_for()
    bob.get_by_test_id("room").wait_for()
    wait_for_media(alice, ["bob"])
    wait_for_media(bob, ["alice"])
    # Hanging up ends the call for both.
    alice.get_by_role("button", name="Hang up").click()
    bob.get_by_test_id("call-status").get_by_text("alice hung up").wait_for(timeout=5000)
    alice.get_by_test_id("call-status").get_by_text("You hung up").wait_for(timeout=5000)


def test_declined_call_reports_declined(person: Person) -> None:
    carol, dave = person(), person()
    go_online(carol, "carol")
    go_online(dave, "dave")
    dial(carol, "dave")
    dave.get_by_test_id("incoming-call").get_by_role("button", name="Decline").click()
    status = carol.get_by_test_id("call-status")
    status.get_by_text("Declined").wait_for(timeout=5000)
    assert status.get_attribute("data-reason") == "declined"
    assert dave.get_by_test_id("room").count() == 0
