"""A call outlives its signaling socket (RELIABILITY rows 29-31, 33), in real Chromium.

- ``kill -9`` of ``salon serve`` mid-room and mid-call, started again on the same port and
  data folder after 5 s: the browsers reconnect by themselves, take their places back (same
  member ids), media never stops, chat typed during the outage arrives exactly once.
- A signaling-only outage without a restart: the pages reach the server through a TCP proxy
  that resets every connection, and refuses new ones, for 20 s. Media never stops and the
  peers never see ``member_left``.

Media is measured inside each page (``faults.SAMPLER``: ``getStats()`` every 250 ms); the
proof is that inbound ``framesDecoded`` never stood still for more than a second.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import (
    Person,
    join_room,
    new_room,
    salon_server,
    screenshot,
    tile,
    wait_for_media,
)
from tests.e2e.faults import SalonProcess, now_ms, tcp_proxy
from tests.e2e.test_call import dial, go_online
from tests.e2e.test_room import chat_texts, send_chat
from tests.e2e.watch import (
    FrameLog,
    banner_report,
    error_lines,
    media_flows,
    poll,
    snapshot_ids,
    start_sampler,
    stop_sampler,
    warm_up,
)

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

OUTAGE_S = 5.0  # kill -9, then start again after this long
CUT_S = 20.0  # the signaling-only outage
MAX_GAP_MS = 1000  # the longest time inbound video may stand still
RESUME_S = 45.0  # how long the browsers may take to be back after the server is


@dataclass
class Side:
    """One person in the test: their page, name, the other person's name, their frames."""

    page: Any
    name: str
    other: str
    log: FrameLog


def people(person: Person, base_url: str, names: tuple[str, str]) -> tuple[Side, Side]:
    a, b = person(base_url=base_url), person(base_url=base_url)
    return (
        Side(a, names[0], names[1], FrameLog(a)),
        Side(b, names[1], names[0], FrameLog(b)),
    )


def open_chat(page: Any) -> None:
    if page.locator("#chat-input").count() == 0:
        page.get_by_role("button", name="Chat").click()
    page.locator("#chat-input").wait_for()


def in_room(person: Person, base_url: str, names: tuple[str, str]) -> tuple[tuple[Side, Side], str]:
    """Two people in a new room, media flowing both ways, chat open on both."""
    sides = people(person, base_url, names)
    room = new_room(sides[0].page)
    for side in sides:
        join_room(side.page, room, side.name)
    return settle(sides), room


def in_call(person: Person, base_url: str, names: tuple[str, str]) -> tuple[Side, Side]:
    """A direct call by name (``/call``): the first calls the second, who accepts."""
    sides = people(person, base_url, names)
    caller, callee = sides
    go_online(caller.page, caller.name)
    go_online(callee.page, callee.name)
    caller.page.get_by_test_id("online").get_by_text(callee.name).wait_for()
    dial(caller.page, callee.name)
    callee.page.get_by_test_id("incoming-call").get_by_role("button", name="Accept").click()
    for side in sides:
        side.page.get_by_test_id("room").wait_for()
    return settle(sides)


def settle(sides: tuple[Side, Side]) -> tuple[Side, Side]:
    """Media flowing both ways, chat open, and the samplers running with data on both."""
    for side in sides:
        wait_for_media(side.page, [side.other])
        open_chat(side.page)
    for side in sides:
        start_sampler(side.page)
    for side in sides:
        warm_up(side.page, side.other)
    return sides


def exchange_chat(sides: tuple[Side, Side], text: str) -> None:
    """The first side says ``text``; wait until both show it."""
    send_chat(sides[0].page, text)
    wait_chat(sides, text)


def wait_chat(sides: tuple[Side, ...], text: str) -> None:
    """Wait until every side shows the chat message ``text``; say what each had otherwise."""
    try:
        for side in sides:
            side.page.locator(
                '[data-testid="chat-entry"] .chat-text', has_text=text
            ).first.wait_for(timeout=RESUME_S * 1000)
    except Exception:
        for side in sides:
            print(f"[{side.name}] chat shown: {chat_texts(side.page)}")
            print(f"[{side.name}] chat frames sent: {side.log.sent('chat')}")
            print(f"[{side.name}] chat frames received: {side.log.received('chat')}")
            print(f"[{side.name}] errors received: {side.log.received('error')}")
            joined = [
                (j.get("last_seq"), len(j.get("history", []))) for j in side.log.received("joined")
            ]
            print(f"[{side.name}] joined (last_seq, history length): {joined}")
        raise


def wait_banner_gone(sides: tuple[Side, Side], since: float) -> dict[str, float]:
    """Wait until no page shows "Reconnecting…"; returns when each was back (s after since)."""
    back: dict[str, float] = {}
    for side in sides:
        side.page.get_by_test_id("reconnecting").wait_for(state="detached", timeout=RESUME_S * 1000)
        back[side.name] = (now_ms() - since) / 1000
    return back


def keep_sampling(page: Any, ms: float) -> None:
    """Let the samplers record ``ms`` more of the call (the time after recovery to judge)."""
    until = now_ms() + ms
    poll(page, lambda: now_ms() >= until, "more samples", ms / 1000 + 5, every_ms=250)


def check_media_never_stopped(sides: tuple[Side, Side], label: str) -> None:
    failures = []
    for side in sides:
        rows = stop_sampler(side.page)
        video, _audio = media_flows(f"{label}: {side.name}", rows, side.other)
        ghosts = sorted({n for r in rows for n in (r["s"] or {})} - {side.other})
        if ghosts:
            failures.append(f"{side.name}'s stats named others besides {side.other}: {ghosts}")
        if video.longest_gap_ms > MAX_GAP_MS or video.rises == 0:
            failures.append(f"{side.name}: {video}")
    assert not failures, failures


def check_same_places(sides: tuple[Side, Side], before: dict[str, dict[str, Any]]) -> None:
    """Same member ids and names as before, one tile per person, no ghost."""
    for side in sides:
        after = snapshot_ids(side.page)
        print(f"[{side.name}] before {before[side.name]} after {after}")
        assert after["self"] == before[side.name]["self"], "the member id changed"
        assert after["members"] == before[side.name]["members"], "other members changed"
        tiles = side.page.locator('[data-testid="tile"]')
        names = sorted(tiles.evaluate_all("ts => ts.map(t => t.dataset.member)"))
        assert names == sorted([side.name, side.other]), f"{side.name} sees tiles {names}"
        assert tile(side.page, side.other).count() == 1


def check_server_log(log: str) -> None:
    errors = error_lines(log)
    print(f"server log: {len(errors)} ERROR lines {sorted(set(errors))[:5]}")
    assert errors == [], f"the server logged errors for a fault it handled: {errors[:5]}"


def check_chat_once(sides: tuple[Side, Side], expected: list[str]) -> None:
    for side in sides:
        assert chat_texts(side.page) == expected, f"{side.name}'s chat"


def resumed_welcomes(side: Side, since: float) -> list[dict[str, Any]]:
    welcomes = side.log.received("welcome", since)
    print(
        f"[{side.name}] sockets opened since the fault: {side.log.opened(since)};"
        f" welcomes: {[w.get('resumed') for w in welcomes]};"
        f" errors: {[e.get('code') for e in side.log.received('error', since)]}"
    )
    return welcomes


def kill_and_restart(
    server: SalonProcess, sides: tuple[Side, Side], text: str, shot: str | None = None
) -> tuple[float, float]:
    """``kill -9`` the server; once both pages say "Reconnecting…", the first types ``text``
    (and, with ``shot``, its page is saved under that name for the README); start the server
    again on the same port 5 s after the kill. Returns (killed, restarted)."""
    killed = now_ms()
    server.kill()
    for side in sides:
        side.page.get_by_test_id("reconnecting").wait_for(timeout=OUTAGE_S * 1000)
        print(f"[{side.name}] 'Reconnecting…' after {(now_ms() - killed) / 1000:.2f} s")
    send_chat(sides[0].page, text)
    held = sides[0].page.evaluate(
        "() => [document.querySelector('#chat-input')?.value,"
        " (window.__salon?.snapshot().unsent ?? []).map((u) => u.text)]"
    )
    print(f"[{sides[0].name}] typed during the outage; chat box, unsent: {held}")
    if shot is not None:
        screenshot(sides[0].page, shot)
    # The outage's length is the scenario, not a condition to wait for.
    sides[0].page.wait_for_timeout(max(0.0, killed + OUTAGE_S * 1000 - now_ms()))
    restarted = now_ms()
    took = server.start(page=sides[0].page)
    print(f"server down {(restarted - killed) / 1000:.2f} s, took {took:.2f} s to start again")
    return killed, restarted


def test_kill_9_and_restart_mid_room_keeps_the_call_and_the_chat(
    person: Person, restartable: SalonProcess
) -> None:
    sides, room = in_room(person, restartable.url, ("ann", "ben"))
    exchange_chat(sides, "before the outage")
    before = {s.name: snapshot_ids(s.page) for s in sides}
    during = f"typed while the server was down {secrets.token_hex(3)}"

    killed, restarted = kill_and_restart(restartable, sides, during, shot="reconnecting")
    back = wait_banner_gone(sides, restarted)
    print(f"back (banner gone) after the restart, in s: {back}")
    for side in sides:
        welcomes = resumed_welcomes(side, killed)
        assert welcomes and welcomes[-1].get("resumed"), f"{side.name} did not resume"
    exchange_chat((sides[1], sides[0]), "after the outage")
    keep_sampling(sides[0].page, 3000)

    check_media_never_stopped(sides, "kill -9 in a room")
    for side in sides:
        banner_report(side.name, side.page)
        assert side.log.received("member_left", killed) == [], f"{side.name} saw member_left"
    check_same_places(sides, before)
    expected = ["before the outage", during, "after the outage"]
    check_chat_once(sides, expected)
    # What the server stored: a late joiner's history has each message once, in order.
    cat = person(base_url=restartable.url)
    join_room(cat, room, "cat")
    open_chat(cat)
    cat.get_by_text("after the outage").wait_for()
    assert chat_texts(cat) == expected
    wait_for_media(sides[0].page, [sides[1].name])
    check_server_log(restartable.log())


def test_kill_9_and_restart_mid_direct_call_keeps_the_call(
    person: Person, restartable: SalonProcess
) -> None:
    sides = in_call(person, restartable.url, ("alice", "bob"))
    exchange_chat(sides, "before the outage")
    before = {s.name: snapshot_ids(s.page) for s in sides}
    during = f"said while the server was down {secrets.token_hex(3)}"

    killed, restarted = kill_and_restart(restartable, sides, during)
    back = wait_banner_gone(sides, restarted)
    print(f"back (banner gone) after the restart, in s: {back}")
    for side in sides:
        welcomes = resumed_welcomes(side, killed)
        assert welcomes and welcomes[-1].get("resumed"), f"{side.name} did not resume"
        assert welcomes[-1]["resumed"].get("call"), f"{side.name} resumed outside the call"
    exchange_chat((sides[1], sides[0]), "after the outage")
    keep_sampling(sides[0].page, 3000)

    check_media_never_stopped(sides, "kill -9 in a call")
    for side in sides:
        banner_report(side.name, side.page)
        assert side.log.received("member_left", killed) == [], f"{side.name} saw member_left"
        assert side.log.received("call_ended", killed) == [], f"{side.name}'s call ended"
        side.page.get_by_test_id("room").wait_for()  # still in the call
    check_same_places(sides, before)
    check_chat_once(sides, ["before the outage", during, "after the outage"])
    check_server_log(restartable.log())


def test_signaling_cut_for_20_s_keeps_media_members_and_chat(
    person: Person, tmp_path: Path
) -> None:
    with salon_server(tmp_path) as url, tcp_proxy(url) as proxy:
        sides, _room = in_room(person, proxy.url, ("cid", "dee"))
        exchange_chat(sides, "before the cut")
        before = {s.name: snapshot_ids(s.page) for s in sides}
        during = f"sent during the cut {secrets.token_hex(3)}"

        cut_at = now_ms()
        open_links = proxy.cut()
        print(f"cut {open_links} proxied connections")
        for side in sides:
            poll(
                side.page,
                lambda s=side: any(at >= cut_at and w == "close" for at, _u, w in s.log.sockets),
                f"{side.name}'s socket to close",
                10,
            )
        send_chat(sides[0].page, during)
        sides[0].page.wait_for_timeout(max(0.0, cut_at + CUT_S * 1000 - now_ms()))
        proxy.restore()
        restored = now_ms()
        print(f"restored after {(restored - cut_at) / 1000:.2f} s; {proxy.counts}")
        assert proxy.counts.reset_while_cut > 0, "no browser tried to reconnect during the cut"

        back = wait_banner_gone(sides, restored)
        wait_chat(sides, during)
        print(f"chat and banner back after the restore, in s: {back}")
        exchange_chat((sides[1], sides[0]), "after the cut")
        keep_sampling(sides[0].page, 3000)

        check_media_never_stopped(sides, "20 s signaling cut")
        for side in sides:
            banner_report(side.name, side.page)
            welcomes = resumed_welcomes(side, cut_at)
            assert welcomes and welcomes[-1].get("resumed"), f"{side.name} did not resume"
            assert side.log.received("member_left", cut_at) == [], f"{side.name} saw member_left"
            other_id = before[side.name]["members"][0][0]
            resumed = [m["member"]["id"] for m in side.log.received("member_resumed", cut_at)]
            print(f"[{side.name}] member_resumed for {resumed}")
            assert other_id in resumed, f"{side.name} was not told {side.other} is back"
        check_same_places(sides, before)
        check_chat_once(sides, ["before the cut", during, "after the cut"])
        started = time.monotonic()
        wait_for_media(sides[0].page, [sides[1].name])
        print(f"media confirmed in {time.monotonic() - started:.1f} s")
        check_server_log((tmp_path / "server.log").read_text())
