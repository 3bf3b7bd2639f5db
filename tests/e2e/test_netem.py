"""A call over a bad network, in real Chromium (RELIABILITY rows 40, 41 and 44).

One person's Chromium runs in a network namespace whose only way out is an impaired
point-to-point link (``faults.ImpairedLink``, addresses in 198.18.0.0/15); the other person's
Chromium and the server are on this machine, the server listening on the link's address. All
media between the two crosses the link, and so does the namespaced person's signaling.

- 20 % loss with 50 ms delay each way: the call stays up (``connected``, video decoded all
  along, the round trip shows the delay).
- A 10 s media blackout (every UDP packet dropped; the signaling still passes): ICE leaves
  ``connected``, the clients restart ICE within their bounds, and media returns after the
  blackout, with the same member ids.
- A new address mid-call (the old one removed, as on a move to another network): the member
  stays the same, ICE restarts, media continues from the new address.
- In a room on the SFU (a real Janus), the namespaced person's media blacked out: their
  connections to Janus stop working, the client asks Salon for a new place on the SFU
  (``sfu_restart``) and says so, and media returns both ways once the link is clean.

Needs root (``ip netns``, ``/dev/net/tun``); skips saying so otherwise. The namespace, the
link and its routes are deleted after the module, also when a test fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from salon.server.janus import JanusProcess
from tests.e2e.conftest import join_room, stats, wait_for_media
from tests.e2e.faults import (
    PC_TRACKER,
    ImpairedLink,
    Impairment,
    SalonProcess,
    namespaced_chromium,
    now_ms,
)
from tests.e2e.watch import (
    ConsoleErrors,
    FrameLog,
    connection_states,
    error_lines,
    first_rise_after,
    flow,
    poll,
    samples,
    snapshot_ids,
    start_sampler,
    warm_up,
)
from tests.support import CHROMIUM, CHROMIUM_ARGS_20_FPS, launched_chromium
from tests.turn.conftest import running_janus

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

TAG = f"h5n{os.getpid() % 10_000}"  # device names: at most 15 characters
BLACKOUT_S = 10.0
LONG_BLACKOUT_S = 15.0  # long enough that the clients' first ICE restart falls inside it
LOSSY_S = 8.0  # how long the call is watched through loss and delay
RECOVER_S = 40.0  # media must be back this long after the blackout ends (generous: 2-3x load)


def _skip(reason: str) -> None:
    print(f"SKIP: {reason}", file=sys.__stderr__)
    pytest.skip(reason)


def free_prefix() -> str:
    """A /24 of 198.19.0.0/16 that no route or address of this machine uses yet."""
    taken = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True)
    addresses = subprocess.run(["ip", "-4", "addr"], capture_output=True)
    used = taken.stdout.decode() + addresses.stdout.decode()
    for third in range(200, 255):
        prefix = f"198.19.{third}"
        if f"{prefix}." not in used:
            return prefix
    raise RuntimeError("no free /24 in 198.19.200.0-198.19.254.0")


@pytest.fixture(scope="module")
def link() -> Iterator[ImpairedLink]:
    if os.geteuid() != 0:
        _skip("network namespaces need root: run the e2e tests as root")
    if shutil.which("ip") is None:
        _skip("iproute2's ip is not installed")
    if not Path("/dev/net/tun").exists():
        _skip("/dev/net/tun is missing: the impaired link needs TUN devices")
    made = ImpairedLink(TAG, free_prefix())
    made.start()
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def salon(link: ImpairedLink, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SalonProcess]:
    """The server on the link's address on this machine. A short keepalive (server ping after
    3 s of silence, dead after 8 s), so a socket whose address went away is noticed soon."""
    env = {"SALON_LIMITS__PING_AFTER_SECONDS": "3", "SALON_LIMITS__DEAD_AFTER_SECONDS": "8"}
    with salon_on(link, tmp_path_factory.mktemp("salon-netem"), env) as server:
        yield server


@contextlib.contextmanager
def salon_on(link: ImpairedLink, folder: Path, env: dict[str, str]) -> Iterator[SalonProcess]:
    """``salon serve`` on the link's address on this machine, stopped after."""
    server = SalonProcess(folder, env, host=link.host_address)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """The home side's Chromium. Both sides' cameras send 20 frames a second here: the share
    of rising samples under loss was measured at that rate (tests/support.py)."""
    with launched_chromium(playwright_instance, CHROMIUM_ARGS_20_FPS) as launched:
        yield launched


@pytest.fixture(scope="module")
def namespaced_browser(
    playwright_instance: Any, link: ImpairedLink, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Any]:
    """Chromium started inside the link's namespace (``ip netns exec``)."""
    script = namespaced_chromium(tmp_path_factory.mktemp("chromium"), link.namespace, CHROMIUM)
    with launched_chromium(playwright_instance, CHROMIUM_ARGS_20_FPS, script) as browser:
        yield browser


@dataclass
class Call:
    """Two people in a call: ``away`` behind the link, ``home`` on this machine."""

    home: Any
    away: Any
    names: tuple[str, str]  # (home, away)
    errors: list[ConsoleErrors]
    away_frames: FrameLog

    def sides(self) -> list[tuple[Any, str, str]]:
        """(page, own name, the other's name) for each person."""
        return [
            (self.home, self.names[0], self.names[1]),
            (self.away, self.names[1], self.names[0]),
        ]


def _page(browser: Any, url: str) -> Any:
    context = browser.new_context(
        base_url=url, ignore_https_errors=True, permissions=["camera", "microphone"]
    )
    context.add_init_script(PC_TRACKER)
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda m: m.type in ("warning", "error") and print("console:", m.text))
    return page


@pytest.fixture(scope="module")
def call(browser: Any, namespaced_browser: Any, salon: SalonProcess) -> Iterator[Call]:
    """One call for the whole module, media flowing both ways before each test."""
    if not CHROMIUM.exists():
        _skip(f"{CHROMIUM} is missing")
    home, away = _page(browser, salon.url), _page(namespaced_browser, salon.url)
    errors = [ConsoleErrors(home), ConsoleErrors(away)]
    made = Call(home, away, ("hal", "ada"), errors, FrameLog(away))
    room = f"netem-{secrets.token_hex(4)}"
    for page, name, _other in made.sides():
        join_room(page, room, name)
    for page, _name, other in made.sides():
        wait_for_media(page, [other])
        start_sampler(page)
    try:
        yield made
    finally:
        for page in (home, away):
            page.context.close()


@pytest.fixture
def flowing(call: Call, link: ImpairedLink) -> Iterator[Call]:
    """The module's call with a clean link and media flowing both ways; the link is made
    clean again after the test whatever happened."""
    link.impairment = Impairment()
    for page, _name, other in call.sides():
        start_sampler(page)  # a fresh record for this test
        warm_up(page, other, timeout=30)
    try:
        yield call
    finally:
        link.impairment = Impairment()


def ids(call: Call) -> list[dict[str, Any]]:
    return [snapshot_ids(page) for page in (call.home, call.away)]


def no_console_errors(call: Call, since: float) -> None:
    for (_page, name, _other), found in zip(call.sides(), call.errors, strict=True):
        assert found.texts(since) == [], f"{name}'s page logged errors: {found.texts(since)}"


def same_members(before: list[dict[str, Any]], after: list[dict[str, Any]]) -> None:
    for old, new in zip(before, after, strict=True):
        assert new["self"] == old["self"], (old, new)
        assert sorted(new["members"]) == sorted(old["members"]), (old, new)


# The selected candidate pair's local address and the RTT, of the page's live connection.
SELECTED = """async () => {
  const pc = window.__pcs.filter((p) => p.connectionState !== "closed").at(-1);
  if (!pc) return null;
  const report = await pc.getStats();
  for (const s of report.values()) {
    if (s.type !== "transport" || !s.selectedCandidatePairId) continue;
    const pair = report.get(s.selectedCandidatePairId);
    const local = pair && report.get(pair.localCandidateId);
    return { address: local ? local.address : null, rtt: pair ? pair.currentRoundTripTime : null };
  }
  return null;
}"""


def selected(page: Any) -> dict[str, Any] | None:
    found: dict[str, Any] | None = page.evaluate(SELECTED)
    return found


# --------------------------------------------------------------------------------------------
# A browser's path to the SFU breaks (RELIABILITY row 44). First in the file: the module's mesh
# call (the ``call`` fixture) is made only when the next test asks for it.


@pytest.fixture
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusProcess]:
    """For one test: stopped before the mesh tests after it, which need the CPU."""
    with running_janus(tmp_path_factory.mktemp("janus")) as running:
        yield running


@pytest.fixture
def sfu_salon(
    link: ImpairedLink, janus: JanusProcess, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SalonProcess]:
    """A server on the link's address whose rooms go through Janus from their second member."""
    env = {
        "SALON_SFU_URL": janus.config.url,
        "SALON_SFU_API_SECRET": janus.config.api_secret,
        "SALON_SFU_ADMIN_KEY": janus.config.admin_key,
        "SALON_SFU_MESH_LIMIT": "1",
        "SALON_SFU_CHECK_SECONDS": "0.5",
    }
    with salon_on(link, tmp_path_factory.mktemp("salon-sfu"), env) as server:
        yield server


MEDIA_ROUTE = "window.__salon ? window.__salon.media() : ''"


def _sfu_state(page: Any) -> str:
    return str(page.evaluate("window.__salon ? window.__salon.sfuState() : ''"))


def test_a_browser_whose_path_to_janus_breaks_asks_for_a_new_place_and_media_returns(
    browser: Any, namespaced_browser: Any, sfu_salon: SalonProcess, link: ImpairedLink
) -> None:
    """Every UDP packet of the namespaced person is dropped (the signaling still passes):
    its connections to Janus go ``disconnected``, its watchdog asks Salon for a new place on
    the SFU (``sfu_restart``) and the room says "reconnecting"; the server answers
    ``room_media``, and once the link is clean the new connections carry media both ways."""
    if not CHROMIUM.exists():
        _skip(f"{CHROMIUM} is missing")
    pages: list[Any] = []
    try:
        pages += [_page(browser, sfu_salon.url), _page(namespaced_browser, sfu_salon.url)]
        home, away = pages
        frames = FrameLog(away)
        room = f"sfu-netem-{secrets.token_hex(4)}"
        join_room(home, room, "kim")
        join_room(away, room, "lou")
        for page, other in ((home, "lou"), (away, "kim")):
            poll(page, lambda p=page: p.evaluate(MEDIA_ROUTE) == "sfu", "the room on the SFU", 15)
            wait_for_media(page, [other])
        made = len(away.evaluate("window.__pcs"))
        start = now_ms()
        link.impairment = Impairment(blackout=True)
        try:
            poll(away, lambda: frames.sent("sfu_restart", since=start), "sfu_restart", 60)
            poll(away, lambda: _sfu_state(away) == "reconnecting", "the room to say so", 10)
            away.get_by_test_id("sfu-banner").wait_for()
        finally:
            link.impairment = Impairment()
        asked = frames.first_at("sfu_restart", since=start, sent=True)
        assert asked is not None
        poll(away, lambda: frames.received("room_media", since=asked), "room_media", 15)
        wait_for_media(away, ["kim"], timeout=60)
        wait_for_media(home, ["lou"], timeout=60)
        poll(away, lambda: _sfu_state(away) == "connected", "connected again", 30)
        assert away.get_by_test_id("sfu-banner").count() == 0
        # New connections carry it: the watchdog started media from scratch.
        assert len(away.evaluate("window.__pcs")) > made
        print(f"sfu_restart {asked - start:.0f} ms into the blackout; link: {link.counts}")
        assert error_lines(sfu_salon.log()) == []
    finally:
        for page in pages:
            page.context.close()


def test_the_call_stays_up_through_20_percent_loss_and_50_ms_delay(
    flowing: Call, link: ImpairedLink
) -> None:
    call = flowing
    start = now_ms()
    link.impairment = Impairment(loss=0.2, delay_ms=50)
    lost_before = link.counts.lost
    call.away.wait_for_timeout(LOSSY_S * 1000)  # the call is watched for this long
    end = now_ms()
    rtt = selected(call.away)
    link.impairment = Impairment()
    print(f"through the link: {link.counts}; away's selected pair: {rtt}")
    assert link.counts.lost - lost_before > 100, link.counts
    assert rtt is not None and rtt["rtt"] is not None and rtt["rtt"] >= 0.09, rtt
    for page, name, other in call.sides():
        rows = samples(page)
        video = flow(rows, other, "v", since=start, until=end)
        audio = flow(rows, other, "a", since=start, until=end)
        states = {(r["s"] or {}).get(other, {}).get("c") for r in rows if start <= r["t"] <= end}
        last = stats(page)[other]
        fps = (last.get("cameraIn") or {}).get("framesPerSecond")
        away = away_spells(rows, other, start, end)
        print(f"[{name}] {video}; {audio}; states {states}; not connected (ms) {away}; fps {fps}")
        # Degraded, not down: with a fifth of the packets lost, ICE's consent checks may miss
        # a moment ("disconnected", seen in one run of several), but the connection never
        # fails, is back within the client's 3 s grace, and the media keeps coming.
        assert "failed" not in states, f"{name}'s connection failed: {states}"
        assert max(away, default=0.0) < 3000, f"{name}'s connection was away too long: {away}"
        assert video.rises >= 0.5 * video.samples, f"{name}: video mostly stood still: {video}"
        assert video.longest_gap_ms < 3000, f"{name}: {video}"
        assert audio.rises >= 0.5 * audio.samples, f"{name}: {audio}"
        assert last["rebuilds"] == 0 and last["iceRestarts"] <= 1, last
    no_console_errors(call, start)


def away_spells(rows: list[dict[str, Any]], other: str, start: float, end: float) -> list[float]:
    """How long (ms) each spell of the connection toward ``other`` out of `connected` lasted
    between ``start`` and ``end`` (wall ms); one still running at ``end`` counts to it."""
    spells: list[float] = []
    left: float | None = None
    for at, state in connection_states(rows, other):
        if at > end:
            break
        if state != "connected" and left is None:
            left = max(at, start)
        elif state == "connected" and left is not None:
            if at >= start:
                spells.append(at - left)
            left = None
    if left is not None:
        spells.append(end - left)
    return spells


@dataclass
class Outcome:
    """How one side came through a blackout."""

    left_connected_s: float  # after the blackout began
    media_back_s: float  # after it ended
    restarts: int
    rebuilds: int


def blackout(call: Call, link: ImpairedLink, seconds: float) -> dict[str, Outcome]:
    """Drop every UDP packet (all media, and ICE's checks) for ``seconds``; wait until ICE
    has noticed on both sides and video rises again on both after; how each side did."""
    before = {name: dict(stats(page)[other]) for page, name, other in call.sides()}
    start = now_ms()
    link.impairment = Impairment(blackout=True)
    left: dict[str, float] = {}
    for page, name, other in call.sides():

        def off(p: Any = page, o: str = other) -> float | None:
            changes = [(t, s) for t, s in connection_states(samples(p), o) if t >= start]
            return next((t for t, s in changes if s != "connected"), None)

        at = poll(page, off, f"{name}'s connection to leave connected", seconds, every_ms=250)
        left[name] = (at - start) / 1000
    call.away.wait_for_timeout(max(0.0, start + seconds * 1000 - now_ms()))  # the fault lasts
    link.impairment = Impairment()
    restored = now_ms()
    for page, _name, other in call.sides():
        poll(
            page,
            lambda p=page, o=other: not math.isnan(first_rise_after(samples(p), o, restored)),
            f"video from {other} after the blackout",
            RECOVER_S,
            every_ms=250,
        )
    outcome: dict[str, Outcome] = {}
    for page, name, other in call.sides():
        rows, now = samples(page), stats(page)[other]
        outcome[name] = Outcome(
            left[name],
            (first_rise_after(rows, other, restored) - restored) / 1000,
            now["iceRestarts"] - before[name]["iceRestarts"],
            now["rebuilds"] - before[name]["rebuilds"],
        )
        changes = [(round((t - start) / 1000, 1), s) for t, s in connection_states(rows, other)]
        print(f"[{name}] {seconds:.0f} s blackout: {outcome[name]}; states (s): {changes}")
        print(f"[{name}] trail: {now['trail'][-10:]}")
    return outcome


def test_media_blackouts_of_10_and_15_s_the_call_comes_back_with_bounded_ice_restarts(
    flowing: Call, link: ImpairedLink
) -> None:
    """10 s (the checklist's): Chromium calls the connection `disconnected` after about 7 s,
    and the client restarts ICE after 3 s of that plus a 1 s backoff (recovery.ts), so media
    usually comes back by itself, before any restart. 15 s: a restart is due and made inside
    the blackout, and media returns through it. Either way: no rebuild, at most 3 restarts,
    the same members."""
    call = flowing
    before, start = ids(call), now_ms()
    short = blackout(call, link, BLACKOUT_S)
    for name, done in short.items():
        assert done.restarts <= 3 and done.rebuilds == 0, (name, done)
    same_members(before, ids(call))
    for page, _name, other in call.sides():
        warm_up(page, other, timeout=30)
    long = blackout(call, link, LONG_BLACKOUT_S)
    for name, done in long.items():
        assert done.restarts <= 3 and done.rebuilds == 0, (name, done)
    assert sum(done.restarts for done in long.values()) >= 1, f"no ICE restart: {long}"
    for page, _name, other in call.sides():
        wait_for_media(page, [other])
    same_members(before, ids(call))
    no_console_errors(call, start)


def test_a_new_address_mid_call_keeps_the_member_and_the_media(
    flowing: Call, link: ImpairedLink
) -> None:
    """The away side's address changes under the call (the new one added, the old one
    removed). Chromium notices the new network and gathers a candidate on it; the media
    moves there, by ICE alone or through the client's ICE restart (after 3 s of
    `disconnected`), whichever comes first. The signaling socket of the old address is dead:
    the client notices the silence and resumes from the new address, as the same member."""
    call = flowing
    before = ids(call)
    old = link.address
    assert (selected(call.away) or {}).get("address") == old, selected(call.away)
    counts = {name: dict(stats(page)[other]) for page, name, other in call.sides()}
    new = f"{link.prefix}.6"
    changed = now_ms()
    link.readdress(new)
    poll(
        call.away,
        lambda: (selected(call.away) or {}).get("address") == new,
        f"the away side's media to use {new}",
        RECOVER_S,
        every_ms=250,
    )
    moved = now_ms()
    for page, _name, other in call.sides():
        poll(
            page,
            lambda p=page, o=other: not math.isnan(first_rise_after(samples(p), o, moved)),
            f"video from {other} over the new address",
            RECOVER_S,
            every_ms=250,
        )
    print(f"the away side's media moved to {new} {(moved - changed) / 1000:.1f} s after the change")
    trickled = [
        m["candidate"]["candidate"]
        for m in call.away_frames.sent("signal", changed)
        if m.get("candidate") and f" {new} " in m["candidate"]["candidate"]
    ]
    print(f"the away side trickled {len(trickled)} candidates of {new}")
    restarts = 0
    for page, name, other in call.sides():
        rows, now = samples(page), stats(page)[other]
        took = (first_rise_after(rows, other, moved) - changed) / 1000
        changes = [(round((t - changed) / 1000, 1), s) for t, s in connection_states(rows, other)]
        restarts += now["iceRestarts"] - counts[name]["iceRestarts"]
        assert now["rebuilds"] == counts[name]["rebuilds"], f"{name} rebuilt: {now['trail']}"
        assert now["iceRestarts"] - counts[name]["iceRestarts"] <= 3, now["trail"]
        print(
            f"[{name}] video from {other} rising {took:.1f} s after the change; states {changes};"
            f" {flow(rows, other, 'v', since=changed)}; trail {now['trail'][-8:]}"
        )
    print(f"ICE restarts made by the two sides: {restarts}")
    assert trickled or restarts >= 1, "the media moved without a new candidate or a restart"

    # The signaling: resumed from the new address, the same member on both sides.
    poll(
        call.away,
        lambda: (
            call.away_frames.opened(changed) >= 1
            and call.away.evaluate("window.__salon.signaling()") == "open"
        ),
        "the away side's signaling to come back from the new address",
        RECOVER_S,
        every_ms=250,
    )
    sockets = [(round((t - changed) / 1000, 1), what) for t, _u, what in call.away_frames.sockets]
    print(f"the away side's signaling sockets (s after the change): {sockets[-3:]}")
    for page, _name, other in call.sides():
        wait_for_media(page, [other])
    same_members(before, ids(call))
    no_console_errors(call, changed)
