"""The meeting itself (issue 11): layouts, presenting, speaking, hands, reactions, statistics,
keyboard, accessibility, phones and the pages around a room, as people see them in Chromium.

Geometry is read from the elements' boxes; media from getStats() numbers that rise; the active
speaker from the tile each page highlights while only one fake microphone is on.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Person,
    join_room,
    new_room,
    screenshots,
    tile,
    wait_for_media,
)

pytestmark = pytest.mark.e2e

AXE = Path(__file__).resolve().parents[2] / "web" / "node_modules" / "axe-core" / "axe.min.js"


def box(locator: Any) -> dict[str, float]:
    found: dict[str, float] | None = locator.bounding_box()
    assert found is not None, f"{locator} is not on screen"
    return found


def area(b: dict[str, float]) -> float:
    return b["width"] * b["height"]


def overlap(a: dict[str, float], b: dict[str, float]) -> float:
    """The area two boxes share, in square CSS pixels."""
    w = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    h = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    return max(0.0, w) * max(0.0, h)


def stage(page: Any) -> Any:
    return page.get_by_test_id("stage")


def layout_is(page: Any, layout: str) -> None:
    page.locator(f'[data-testid="stage"][data-layout="{layout}"]').wait_for()


def people(
    person: Person, names: list[str], *, camera: bool = True, **size: Any
) -> tuple[str, list[Any]]:
    """``names`` in one new room, each with media from all the others flowing (audio only
    with ``camera=False``: the cameras are turned off before joining)."""
    pages = [person(**size) for _ in names]
    room = new_room(pages[0])
    for page, name in zip(pages, names, strict=True):
        join_room(page, room, name, camera=camera)
    for page, name in zip(pages, names, strict=True):
        wait_for_media(page, [n for n in names if n != name], video=camera)
    return room, pages


def mute(page: Any) -> None:
    page.get_by_role("button", name="Mute microphone").click()
    page.get_by_role("button", name="Unmute microphone").wait_for()


def unmute(page: Any) -> None:
    page.get_by_role("button", name="Unmute microphone").click()
    page.get_by_role("button", name="Mute microphone").wait_for()


# ------------------------------------------------------------------------------ layouts


def test_a_shared_screen_takes_the_stage_uncovered_and_gives_it_back(person: Person) -> None:
    _, (ann, bob, cat) = people(person, ["ann", "bob", "cat"], width=1280, height=800)
    layout_is(ann, "grid")

    bob.get_by_role("button", name="Share screen").click()

    layout_is(ann, "presenter")
    wait_for_media(ann, ["bob"], field="screenFramesDecoded", audio=False)
    screen = ann.locator('[data-testid="screen-tile"][data-member="bob"]')
    assert screen.get_attribute("data-place") == "main"
    shown = box(screen)
    cameras = ann.locator('[data-testid="tile"]')
    assert cameras.count() == 3  # ann, bob and cat, bob's camera too
    for i in range(cameras.count()):
        camera = box(cameras.nth(i))
        assert area(shown) > 2 * area(camera), (shown, camera)
        assert overlap(shown, camera) == 0, (shown, camera)  # no camera covers the screen
    video = screen.locator("video")
    assert video.evaluate("v => getComputedStyle(v).objectFit") == "contain"  # never cropped
    # The whole picture shows: the video element's box holds the frame at its own aspect.
    sizes = video.evaluate("v => [v.videoWidth, v.videoHeight, v.clientWidth, v.clientHeight]")
    assert sizes[0] > 0 and sizes[1] > 0
    layout_is(bob, "presenter")  # the presenter sees its own screen large too
    screenshots(ann, "presenter")

    bob.get_by_role("button", name="Stop sharing screen").click()
    layout_is(ann, "grid")
    assert ann.get_by_test_id("screen-tile").count() == 0
    del cat


def test_grid_letterboxes_rather_than_crops(person: Person) -> None:
    """Two people with chat open: tiles stay near 16:9 and the video is never cropped."""
    _, (ann, bob) = people(person, ["ann", "bob"], width=1280, height=800)
    ann.get_by_test_id("control-chat").click()
    ann.get_by_test_id("chat-input").wait_for()
    layout_is(ann, "grid")
    for name in ("ann", "bob"):
        b = box(tile(ann, name))
        assert 1.2 < b["width"] / b["height"] < 2.2, (name, b)  # not a tall portrait
        fit = tile(ann, name).locator("video").first.evaluate("v => getComputedStyle(v).objectFit")
        assert fit == "contain"
    del bob


def test_pin_and_fullscreen_any_tile(person: Person) -> None:
    _, (ann, _bob, _cat) = people(person, ["ann", "bob", "cat"])
    cat_tile = tile(ann, "cat")
    cat_tile.hover()
    cat_tile.get_by_test_id("tile-pin").click()
    cat_tile.and_(ann.locator('[data-place="main"]')).wait_for()
    assert cat_tile.get_attribute("data-pinned") == "true"
    assert area(box(cat_tile)) > 2 * area(box(tile(ann, "bob")))
    cat_tile.hover()
    cat_tile.get_by_test_id("tile-pin").click()  # unpinned: back to the grid
    layout_is(ann, "grid")
    assert cat_tile.get_attribute("data-pinned") != "true"

    bob_tile = tile(ann, "bob")
    bob_tile.hover()
    bob_tile.get_by_test_id("tile-fullscreen").click()
    ann.wait_for_function("() => document.fullscreenElement?.getAttribute('data-member') === 'bob'")
    ann.evaluate("document.exitFullscreen()")
    ann.wait_for_function("() => document.fullscreenElement === null")

    own = tile(ann, "ann")
    own.hover()
    own.get_by_test_id("self-minimise").click()
    ann.get_by_test_id("self-minimised").wait_for()
    assert tile(ann, "ann").count() == 0
    ann.get_by_test_id("self-restore").click()
    tile(ann, "ann").wait_for()


# ------------------------------------------------------------------------------ speaking


def speaking(page: Any, name: str) -> bool:
    return tile(page, name).get_attribute("data-speaking") == "true"


def highlighted(page: Any, on: str, off: str, *, seconds: float = 20.0) -> None:
    """Wait until ``on``'s tile is highlighted as speaking while ``off``'s never is."""
    deadline = time.monotonic() + seconds
    seen = False
    while time.monotonic() < deadline:
        assert not speaking(page, off), f"{off} is muted but shown speaking"
        if speaking(page, on):
            seen = True
            break
        page.wait_for_timeout(100)
    assert seen, f"{on}'s tile was never shown speaking"
    for _ in range(10):  # and the muted one stays dark for a while after
        assert not speaking(page, off), f"{off} is muted but shown speaking"
        page.wait_for_timeout(100)


def test_the_highlight_follows_the_microphone_that_makes_sound(person: Person) -> None:
    _, (ann, bob, cat) = people(person, ["ann", "bob", "cat"])
    mute(ann)
    mute(cat)
    highlighted(ann, "bob", "cat")
    mute(bob)
    unmute(cat)
    highlighted(ann, "cat", "bob")
    # Speaker view puts the one speaking on the main tile.
    ann.get_by_test_id("control-layout").click()
    ann.get_by_test_id("layout-speaker").click()
    layout_is(ann, "speaker")
    tile(ann, "cat").and_(ann.locator('[data-place="main"]')).wait_for()


# ------------------------------------------------------------------------------ hands, reactions


def test_hands_in_order_and_a_reaction_reaches_the_others(person: Person) -> None:
    _, (ann, bob, cat) = people(person, ["ann", "bob", "cat"], camera=False)
    cat.get_by_test_id("control-hand").click()
    tile(ann, "cat").and_(ann.locator('[data-hand="1"]')).wait_for()
    bob.get_by_test_id("control-hand").click()
    tile(ann, "bob").and_(ann.locator('[data-hand="2"]')).wait_for()
    ann.get_by_test_id("control-people").click()
    rows = ann.get_by_test_id("person")
    rows.first.wait_for()
    order = rows.evaluate_all("rows => rows.map(r => r.getAttribute('data-label'))")
    assert order[:2] == ["cat", "bob"], order  # raised hands first, earliest first

    ann.get_by_test_id("control-react").click()
    ann.get_by_test_id("react-clap").click()
    for page in (bob, cat, ann):
        page.locator('[data-testid="reaction"][data-reaction="clap"]').first.wait_for()
    assert bob.locator('[data-testid="reaction"]').first.get_attribute("data-from") == "ann"
    # It floats away after a few seconds.
    bob.locator('[data-testid="reaction"]').first.wait_for(state="detached", timeout=10_000)


# ------------------------------------------------------------------------------ statistics


def stat_values(page: Any) -> dict[str, str]:
    peer = page.locator('[data-testid="stats-peer"][data-member="bob"]')
    cells = peer.locator("[data-stat]")
    found: dict[str, str] = {}
    for i in range(cells.count()):
        cell = cells.nth(i)
        found[str(cell.get_attribute("data-stat"))] = cell.inner_text()
    return found


def test_the_statistics_panel_shows_numbers_that_change(person: Person) -> None:
    _, (ann, bob) = people(person, ["ann", "bob"], width=1280, height=800)
    quality = tile(ann, "bob").get_by_test_id("tile-quality")
    quality.and_(ann.locator(':not([data-level="unknown"])')).wait_for()
    assert quality.get_attribute("data-path") == "direct"

    ann.get_by_test_id("control-stats").click()
    ann.get_by_test_id("stats-panel").wait_for()
    ann.locator('[data-testid="stats-peer"][data-member="bob"]').wait_for()
    first = stat_values(ann)
    for key in ("rtt", "bitrate-in", "bitrate-out", "resolution-in", "codec-in", "fps"):
        assert key in first, first
    ann.wait_for_function(
        """(before) => {
          const cell = document.querySelector(
            '[data-testid="stats-peer"][data-member="bob"] [data-stat="bitrate-in"]');
          return cell !== null && cell.textContent !== before;
        }""",
        arg=first["bitrate-in"],
    )
    # A rate needs two readings: the first may still be a placeholder, the changed one not.
    later = stat_values(ann)
    assert any(ch.isdigit() for ch in later["bitrate-in"]), later
    assert "x" in later["resolution-in"].lower() or "×" in later["resolution-in"], later
    screenshots(ann, "statistics")
    del bob


# ------------------------------------------------------------------------------ keyboard


def test_shortcuts_never_fire_while_typing_and_escape_returns_focus(person: Person) -> None:
    _, (ann, bob) = people(person, ["ann", "bob"], camera=False)
    ann.keyboard.press("c")
    box_ = ann.get_by_test_id("chat-input")
    box_.wait_for()
    ann.wait_for_function("() => document.activeElement?.dataset.testid === 'chat-input'")
    box_.type("mv hello")  # "m" and "v" are shortcuts, but not in a text box
    assert ann.get_by_role("button", name="Mute microphone").count() == 1
    assert box_.input_value() == "mv hello"
    box_.press("Shift+Enter")
    box_.type("second line")
    box_.press("Enter")
    bob.get_by_test_id("control-chat").click()
    bob.get_by_test_id("chat-entry").filter(has_text="second line").wait_for()
    assert "mv hello\nsecond line" in bob.get_by_test_id("chat-entry").last.inner_text()

    ann.keyboard.press("Escape")
    ann.get_by_test_id("chat-input").wait_for(state="detached")
    # Focus goes back where it was when "c" was pressed: the room's heading, after joining.
    ann.wait_for_function("() => document.activeElement?.tagName === 'H1'")
    ann.get_by_test_id("control-chat").click()
    ann.get_by_test_id("chat-input").wait_for()
    ann.keyboard.press("Escape")
    ann.wait_for_function("() => document.activeElement?.dataset.testid === 'control-chat'")
    ann.keyboard.press("m")
    ann.get_by_role("button", name="Unmute microphone").wait_for()
    ann.keyboard.press("Shift+?")
    ann.get_by_test_id("shortcut-help").wait_for()
    ann.keyboard.press("Escape")
    ann.get_by_test_id("shortcut-help").wait_for(state="detached")


# ------------------------------------------------------------------------------ accessibility


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """Serious and critical axe-core violations on the page as it stands (WCAG 2.x A/AA)."""
    # Evaluated over the DevTools protocol: the page's CSP (script-src 'self') refuses an
    # injected <script>, as it should.
    page.evaluate(AXE.read_text() + "\n;undefined")
    result: dict[str, Any] = page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values: "
        "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
    )
    return [
        {"id": v["id"], "impact": v["impact"], "nodes": [n["html"][:160] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_no_serious_accessibility_violations(person: Person) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: make test installs the client's npm packages")
    ann, bob = person(), person()
    found: dict[str, Any] = {}
    ann.goto("/")
    ann.get_by_test_id("home").wait_for()
    found["home"] = axe_violations(ann)
    room = new_room(ann)
    ann.goto(f"/r/{room}")
    ann.get_by_test_id("prejoin").wait_for()
    ann.get_by_label("Your name").fill("ann")
    ann.get_by_role("button", name="Join now").and_(ann.locator(":enabled")).wait_for()
    found["prejoin"] = axe_violations(ann)
    join_room(ann, room, "ann")
    join_room(bob, room, "bob")
    wait_for_media(ann, ["bob"])
    ann.get_by_test_id("control-chat").click()
    ann.get_by_test_id("chat-input").fill("hello")
    ann.get_by_test_id("chat-input").press("Enter")
    bob.get_by_test_id("control-people").click()
    bob.get_by_test_id("people").wait_for()
    found["room with chat"] = axe_violations(ann)
    found["room with participants"] = axe_violations(bob)
    ann.goto("/call")
    ann.get_by_test_id("call-go-online").wait_for()
    found["call"] = axe_violations(ann)
    ann.get_by_label("Your name").fill("ann")
    ann.get_by_role("button", name="Go online").click()
    ann.get_by_test_id("my-id").wait_for()
    found["call, online"] = axe_violations(ann)
    bad = {page: v for page, v in found.items() if v}
    assert bad == {}, json.dumps(bad, indent=1)


# ------------------------------------------------------------------------------ phones


@pytest.mark.parametrize("size", [(390, 844), (360, 640)])
def test_a_phone_gets_one_row_of_controls_and_the_speaker_large(
    person: Person, size: tuple[int, int]
) -> None:
    width, height = size
    _, (ann, bob) = people(person, ["ann", "bob"], width=width, height=height)
    bar = ann.get_by_role("navigation", name="Call controls")
    buttons = bar.locator("button:visible")
    tops = {round(box(buttons.nth(i))["y"]) for i in range(buttons.count())}
    assert len(tops) == 1, f"controls wrap into rows at {tops}"
    right = max(
        box(buttons.nth(i))["x"] + box(buttons.nth(i))["width"] for i in range(buttons.count())
    )
    assert right <= width
    header = box(ann.locator(".room-header"))
    assert header["height"] < 64, header  # the title does not wrap word by word
    layout_is(ann, "speaker")
    tile(ann, "bob").and_(ann.locator('[data-place="main"]')).wait_for()
    ann.get_by_test_id("control-more").click()
    ann.get_by_role("menuitem", name="Chat").click()
    ann.get_by_test_id("chat-input").wait_for()
    ann.keyboard.press("Escape")
    del bob


# ------------------------------------------------------------------------------ pages


def test_a_guest_visit_logs_no_console_error(person: Person) -> None:
    page = person()
    errors: list[str] = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto("/")
    page.get_by_test_id("home").wait_for()
    room = new_room(page)
    join_room(page, room, "gus")
    page.get_by_test_id("control-leave").click()
    page.get_by_test_id("left").wait_for()
    page.goto("/call")
    page.get_by_test_id("call-go-online").wait_for()
    assert errors == []


def test_bad_links_say_so(person: Person) -> None:
    page = person()
    for path in ("/r/%25%25%25", "/r/b%C3%BCro", "/r/" + "x" * 65):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
        page.get_by_test_id("not-a-meeting").wait_for()
        assert page.get_by_role("link", name="home", exact=False).count() >= 1
    answer = page.goto("/no/such/page")
    assert answer is not None and answer.status == 404
    page.get_by_test_id("not-found").wait_for()
