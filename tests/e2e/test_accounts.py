"""Accounts in the browser: register, sign out, sign in, join a room under the account's name,
field-level errors in words, and the rate-limit message from Retry-After."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import (
    Person,
    join_room,
    new_room,
    register,
    salon_server,
    screenshot,
    sign_in,
    tile,
    wait_for_media,
)

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def me_status(page: Any) -> int:
    """What ``GET /api/v1/me`` answers this page: 200 signed in, 401 a guest."""
    status: int = page.evaluate("fetch('/api/v1/me').then(r => r.status)")
    return status


def test_register_sign_out_sign_in_and_join_under_the_account_name(person: Person) -> None:
    ada = person()
    register(ada, "ada_e2e", PASSWORD, "Ada Lovelace")
    status = ada.get_by_test_id("account-status")
    assert status.inner_text().startswith("Signed in as Ada Lovelace")
    name = ada.get_by_label("Your name")
    assert name.input_value() == "Ada Lovelace"
    assert not name.is_editable()  # the account's name, changed on the Account page
    assert me_status(ada) == 200

    status.get_by_role("link", name="Account").click()
    ada.get_by_test_id("account-display-name").get_by_text("Ada Lovelace").wait_for()
    assert ada.get_by_test_id("account-username").inner_text() == "ada_e2e"
    ada.get_by_role("button", name="Sign out").focus()
    ada.keyboard.press("Enter")  # keyboard-usable
    ada.get_by_test_id("home").wait_for()
    status.get_by_role("link", name="Sign in").wait_for()
    assert status.get_by_role("link", name="Create account").is_visible()
    assert ada.get_by_label("Your name").is_editable()
    assert me_status(ada) == 401

    # A wrong password is refused in words, then the right one signs in.
    ada.goto("/login")
    ada.get_by_label("Username").fill("ada_e2e")
    ada.get_by_label("Password").fill("not the password")
    ada.get_by_role("button", name="Sign in").click()
    assert ada.get_by_test_id("form-error").inner_text() == "Wrong username or password."
    sign_in(ada, "ada_e2e", PASSWORD)
    assert status.inner_text().startswith("Signed in as Ada Lovelace")

    # A guest in another browser context sees the account's name on Ada's tile.
    guest = person()
    room = new_room(guest)
    join_room(guest, room, "guest")
    ada.goto(f"/r/{room}")
    ada.get_by_test_id("prejoin").get_by_text("Signed in as Ada Lovelace").wait_for()
    prejoin_name = ada.get_by_label("Your name")
    assert prejoin_name.input_value() == "Ada Lovelace"
    assert not prejoin_name.is_editable()
    ada.get_by_role("button", name="Join now").click()
    ada.get_by_test_id("room").wait_for()
    tile(guest, "Ada Lovelace").wait_for()
    assert tile(guest, "Ada Lovelace").get_by_text("Ada Lovelace").is_visible()
    wait_for_media(guest, ["Ada Lovelace"])  # a real call with the signed-in person
    assert tile(ada, "Ada Lovelace").get_attribute("data-self") == "true"


def test_signed_in_as_on_home_and_account_page_screenshot(person: Person) -> None:
    page = person(height=1000)
    page.goto("/")
    guest_status = page.get_by_test_id("account-status")
    guest_status.get_by_role("link", name="Sign in").wait_for()
    assert "Signed in" not in guest_status.inner_text()
    register(page, "grace_e2e", PASSWORD, "Grace Hopper")
    page.get_by_test_id("account-status").get_by_text("Signed in as Grace Hopper").wait_for()
    page.get_by_role("link", name="Account").click()
    page.get_by_test_id("account").wait_for()
    page.get_by_label("Display name", exact=True).wait_for()
    page.wait_for_timeout(300)
    screenshot(page, "account")
    # A reload keeps the session: the cookie, not the page, knows who is signed in.
    page.reload()
    page.get_by_test_id("account-display-name").get_by_text("Grace Hopper").wait_for()


def test_register_errors_are_shown_on_their_field_in_words(person: Person) -> None:
    first, second = person(), person()
    register(first, "taken_e2e", PASSWORD)
    second.goto("/register")
    second.get_by_label("Username").fill("Taken_E2E")  # names compare without case
    second.get_by_label("Password").fill(PASSWORD)
    second.get_by_role("button", name="Create account").click()
    error = second.get_by_test_id("register-username-error")
    assert error.inner_text() == "That username is taken. Choose another one."
    assert second.get_by_label("Username").get_attribute("aria-invalid") == "true"
    second.get_by_label("Username").fill("fresh_e2e")
    second.get_by_label("Password").fill("short")
    second.get_by_role("button", name="Create account").click()
    password_error = second.get_by_test_id("register-password-error")
    assert password_error.inner_text() == "The password must have at least 8 characters."
    assert error.count() == 0


@pytest.fixture(scope="module")
def strict_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server that allows two sign-in attempts per address, then one a minute."""
    env = {
        "SALON_ACCOUNTS__IP_ATTEMPTS_BURST": "2",
        "SALON_ACCOUNTS__IP_ATTEMPTS_PER_MINUTE": "1",
    }
    with salon_server(tmp_path_factory.mktemp("salon-strict"), env) as url:
        yield url


def test_too_many_attempts_says_how_long_to_wait(person: Person, strict_server: str) -> None:
    page = person(base_url=strict_server)
    page.goto("/login")
    page.get_by_label("Username").fill("nobody")
    page.get_by_label("Password").fill("wrong password")
    button = page.get_by_role("button", name="Sign in")
    error = page.get_by_test_id("form-error")
    for _ in range(2):
        button.click()
        error.get_by_text("Wrong username or password.").wait_for()
    button.click()
    error.get_by_text("Too many attempts").wait_for()
    assert re.fullmatch(r"Too many attempts — try again in \d+ seconds\.", error.inner_text())


@pytest.fixture(scope="module")
def lenient_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server of its own, so that this module's many attempts spend nobody else's budget."""
    env = {
        "SALON_ACCOUNTS__IP_ATTEMPTS_BURST": "50",
        "SALON_ACCOUNTS__ACCOUNT_ATTEMPTS_BURST": "50",
    }
    with salon_server(tmp_path_factory.mktemp("salon-lenient"), env) as url:
        yield url


def test_account_page_changes_the_name_and_the_password(
    person: Person, lenient_server: str
) -> None:
    page = person(base_url=lenient_server, height=1000)
    register(page, "lin_e2e", PASSWORD, "Lin")
    page.get_by_test_id("account-status").get_by_role("link", name="Account").click()
    name = page.get_by_label("Display name", exact=True)
    name.fill("Lin Chen")
    page.get_by_role("button", name="Save name").click()
    page.get_by_test_id("saved").get_by_text("Display name saved.").wait_for()
    assert page.get_by_test_id("account-display-name").text_content() == "Lin Chen"
    page.get_by_role("link", name="Back to home").click()
    page.get_by_test_id("signed-in-name").get_by_text("Lin Chen", exact=True).wait_for()
    assert page.get_by_label("Your name").input_value() == "Lin Chen"

    page.goto("/account")
    page.get_by_label("Current password").fill("not my password")
    page.get_by_label("New password").fill("a much better password")
    page.get_by_role("button", name="Change password").click()
    error = page.get_by_test_id("account-current-password-error")
    assert error.inner_text() == "That is not your current password."
    page.get_by_label("Current password").fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    page.get_by_test_id("saved").get_by_text("Password changed.").wait_for()
    page.get_by_role("button", name="Sign out").click()
    page.get_by_test_id("home").wait_for()
    sign_in(page, "lin_e2e", "a much better password")
    assert page.get_by_test_id("signed-in-name").text_content() == "Lin Chen"


def test_a_guest_cannot_take_a_registered_name(person: Person) -> None:
    owner, guest = person(), person()
    register(owner, "regina_e2e", PASSWORD, "Regina Phalange")
    room = new_room(guest)
    guest.goto(f"/r/{room}")
    guest.get_by_label("Your name").fill("regina phalange")  # names compare without case
    guest.get_by_role("button", name="Join now").click()
    error = guest.get_by_test_id("join-error")
    error.wait_for()
    assert error.inner_text() == (
        '"regina phalange" belongs to a registered account. '
        "Sign in if it is yours, or choose another name."
    )
    # The owner, signed in, joins under it.
    owner.goto(f"/r/{room}")
    owner.get_by_role("button", name="Join now").click()
    owner.get_by_test_id("room").wait_for()
    assert tile(owner, "Regina Phalange").get_attribute("data-self") == "true"
    # The guest comes in under a name of its own: its page marks the owner's name as signed
    # in (MemberInfo.signed_in), and the owner's page does not mark the guest's.
    guest.get_by_label("Your name").fill("Phoebe")
    guest.get_by_role("button", name="Join now").click()
    guest.get_by_test_id("room").wait_for()
    tile(guest, "Regina Phalange").get_by_test_id("tile-signed-in").wait_for()
    tile(owner, "Phoebe").wait_for()
    assert tile(owner, "Phoebe").get_by_test_id("tile-signed-in").count() == 0
