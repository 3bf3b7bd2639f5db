"""A meeting run by another service through the server API (issue 16), as its people see it.

The service holds an API key made with ``salon api-key create``; it creates a meeting with a
password and the lobby on, mints a host link, lists who is in, removes one person and ends the
meeting. The people use nothing but their browsers: a host through the host link, a guest
through the plain link and the password, a third person through the plain link alone (who
must wait in the lobby).
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import SALON, Person, salon_server, screenshots, tile, wait_for_media

pytestmark = pytest.mark.e2e

PASSWORD = "quiet harbour 7"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, httpx.Client]]:
    """A server of its own, and an HTTP client holding a fresh API key for it."""
    data: Path = tmp_path_factory.mktemp("salon-api")
    with salon_server(data) as url:
        made = subprocess.run(
            [str(SALON), "api-key", "create", "e2e-service", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            check=True,
        )
        found = re.search(r"salon_[A-Za-z0-9_-]+", made.stdout)
        assert found is not None, made.stdout
        headers = {"Authorization": f"Bearer {found.group(0)}"}
        with httpx.Client(base_url=url, headers=headers, verify=False, timeout=10) as api:
            yield url, api


def members(api: httpx.Client, room: str) -> dict[str, Any]:
    got = api.get(f"/api/v1/meetings/{room}")
    assert got.status_code == 200, got.text
    meeting: dict[str, Any] = got.json()
    return meeting


def test_a_service_runs_a_meeting_that_people_join_from_their_browsers(
    person: Person, service: tuple[str, httpx.Client]
) -> None:
    url, api = service
    created = api.post("/api/v1/meetings", json={"password": PASSWORD, "lobby": True})
    assert created.status_code == 201, created.text
    room = created.json()["id"]
    assert created.json()["link"].endswith(f"/r/{room}")
    minted = api.post(f"/api/v1/meetings/{room}/links", json={"role": "host"})
    assert minted.status_code == 201, minted.text
    host_link = minted.json()["link"]
    assert re.search(rf"/r/{room}#invite=[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$", host_link)

    ann, bob, cat = (person(base_url=url) for _ in range(3))

    # The host link: no password asked, no waiting, a host in the room.
    ann.goto(host_link.split(url, 1)[1])
    ann.get_by_test_id("prejoin-host").get_by_text("invitation makes you a host").wait_for()
    assert "#invite" not in ann.url, "the invitation stays in the address bar"
    assert ann.get_by_test_id("prejoin-password").count() == 0
    screenshots(ann, "invited-host")
    ann.get_by_label("Your name").fill("ann")
    ann.get_by_test_id("prejoin-join").click()
    ann.get_by_test_id("room").wait_for()
    ann.get_by_test_id("control-security").wait_for()  # only hosts have the Security panel

    # The plain link: the standing password is asked for, and lets bob straight in.
    bob.goto(f"/r/{room}")
    bob.get_by_test_id("room-status").get_by_text(
        "This meeting has a password.", exact=False
    ).wait_for()
    bob.get_by_label("Your name").fill("bob")
    bob.get_by_test_id("prejoin-password").fill(PASSWORD)
    bob.get_by_test_id("prejoin-join").click()
    bob.get_by_test_id("room").wait_for()
    wait_for_media(ann, ["bob"])
    wait_for_media(bob, ["ann"])

    # Without the password, the lobby.
    cat.goto(f"/r/{room}")
    cat.get_by_label("Your name").fill("cat")
    cat.get_by_test_id("prejoin-join").click()
    cat.get_by_test_id("lobby-waiting").wait_for()

    meeting = members(api, room)
    assert meeting["live"] is True and meeting["protected"] and meeting["lobby"]
    by_name = {m["name"]: m for m in meeting["members"]}
    assert set(by_name) == {"ann", "bob"}
    assert by_name["ann"]["host"] is True and by_name["bob"]["host"] is False
    assert [w["name"] for w in meeting["waiting"]] == ["cat"]
    listed = api.get("/api/v1/meetings").json()
    assert room in [m["id"] for m in listed["meetings"]]

    # The service removes bob: his page says so, ann's room notes it and loses his tile.
    removed = api.delete(f"/api/v1/meetings/{room}/members/{by_name['bob']['id']}")
    assert removed.status_code == 204, removed.text
    gone = bob.get_by_test_id("put-out")
    gone.wait_for()
    assert gone.get_attribute("data-reason") == "removed"
    assert "You were removed from this meeting" in gone.inner_text()
    ann.get_by_test_id("room-note").filter(has_text="bob was removed").first.wait_for()
    tile(ann, "bob").wait_for(state="detached")
    assert [m["name"] for m in members(api, room)["members"]] == ["ann"]

    # The service ends the meeting: everyone, the one waiting too, is told.
    ended = api.post(f"/api/v1/meetings/{room}/end")
    assert ended.status_code == 204, ended.text
    for page in (ann, cat):
        out = page.get_by_test_id("put-out")
        out.wait_for()
        assert out.get_attribute("data-reason") == "ended"
    assert room not in [m["id"] for m in api.get("/api/v1/meetings").json()["meetings"]]
    assert members(api, room)["live"] is False
