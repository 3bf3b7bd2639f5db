"""ICE restart through a real coturn (RELIABILITY rows 37 and 40), in real Chromium.

Two people in a relay-only call (``/r/<room>?ice=relay``: their only candidates are relay
candidates on a real ``turnserver``). coturn is stopped until ICE fails, then started again
on the same ports with the same secret. Nobody presses anything: the clients must restart
ICE (or rebuild the pair) by themselves and media must come back through the relay. The time
from coturn's return to video decoding again is measured in the pages and printed.

As in test_relay.py this coturn runs with ``PeerPolicy.ANY`` (loopback peers): test-only.
"""

from __future__ import annotations

import contextlib
import json
import math
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from salon.core.turnconfig import TurnServerConfig
from salon.server.coturn import Coturn, start_coturn
from tests.e2e.conftest import Person, loopback_relay, salon_server, stats, wait_for_media
from tests.e2e.faults import now_ms
from tests.e2e.watch import (
    ConsoleErrors,
    FrameLog,
    connection_states,
    first_rise_after,
    flow,
    poll,
    samples,
    start_sampler,
    stop_sampler,
    warm_up,
)
from tests.turn.conftest import SECRET

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

FAIL_S = 120.0  # how long ICE may take to notice the relay is gone
RECOVER_S = 60.0  # the bound on media coming back after coturn does (generous on purpose)


@dataclass
class Relay:
    """A coturn that can be stopped and started again on the same ports and secret."""

    config: TurnServerConfig
    folder: Path
    running: Coturn | None = None

    def start(self) -> None:
        assert self.running is None
        self.running = start_coturn(self.config, self.folder)

    def stop(self) -> None:
        if self.running is not None:
            self.running.stop()
            self.running = None


@pytest.fixture(scope="module")
def relay(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Relay]:
    config, folder = loopback_relay(tmp_path_factory, "coturn-restart")
    running = Relay(config, folder)
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def relay_server(relay: Relay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    where = f"127.0.0.1:{relay.config.listening_port}"
    env = {
        "SALON_STUN_URLS": json.dumps([f"stun:{where}"]),
        "SALON_TURN_URLS": json.dumps([f"turn:{where}?transport=udp"]),
        "SALON_TURN_SECRET": SECRET,
    }
    with salon_server(tmp_path_factory.mktemp("salon-ice-restart"), env) as url:
        yield url


def join_relayed(page: Any, room: str, name: str) -> None:
    page.goto(f"/r/{room}?ice=relay")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join now").click()
    page.get_by_test_id("room").wait_for()


def relayed(page: Any, other: str) -> bool:
    peer = stats(page).get(other, {})
    return (peer.get("localCandidateType"), peer.get("remoteCandidateType")) == ("relay", "relay")


def ice_failed(page: Any, log: FrameLog, other: str, since: float) -> bool:
    """The connection toward ``other`` reached ``failed``, or the pair was reset for it."""
    if any(state == "failed" for _t, state in connection_states(samples(page), other)):
        return True
    resets = [
        m for m in log.sent("signal", since) + log.received("signal", since) if m.get("reset")
    ]
    return bool(resets)


def test_relay_only_call_comes_back_by_itself_after_coturn_returns(
    person: Person, relay: Relay, relay_server: str
) -> None:
    names = ("kay", "lou")
    pages = [person(base_url=relay_server), person(base_url=relay_server)]
    logs = [FrameLog(p) for p in pages]
    errors = [ConsoleErrors(p) for p in pages]
    room = f"ice-restart-{secrets.token_hex(6)}"
    for page, name in zip(pages, names, strict=True):
        join_relayed(page, room, name)
    sides = [(pages[0], names[0], names[1], logs[0]), (pages[1], names[1], names[0], logs[1])]
    for page, _name, other, _log in sides:
        wait_for_media(page, [other])
        assert relayed(page, other), stats(page)
    for page, *_rest in sides:
        start_sampler(page)
    for page, _name, other, _log in sides:
        warm_up(page, other)

    stopped = now_ms()
    relay.stop()
    poll(
        pages[0],
        lambda: any(ice_failed(p, log, o, stopped) for p, _n, o, log in sides),
        "ICE to fail with coturn gone",
        FAIL_S,
        every_ms=250,
    )
    failed = now_ms()
    print(f"coturn stopped; ICE failed after {(failed - stopped) / 1000:.1f} s")
    relay.start()
    restarted = now_ms()
    print(f"coturn back on port {relay.config.listening_port}")

    def back(page: Any, other: str) -> bool:
        return not math.isnan(first_rise_after(samples(page), other, restarted))

    for page, _name, other, _log in sides:
        with contextlib.suppress(AssertionError):  # judged below, after the diagnostics
            poll(page, lambda p=page, o=other: back(p, o), f"video from {other}", RECOVER_S)

    recovered: dict[str, float] = {}
    for page, name, other, log in sides:
        rows = stop_sampler(page)
        recovered[name] = (first_rise_after(rows, other, restarted) - restarted) / 1000
        changes = [(round((t - stopped) / 1000, 1), s) for t, s in connection_states(rows, other)]
        print(f"[{name}] connection toward {other} (s after the stop): {changes}")
        print(f"[{name}] before the stop: {flow(rows, other, 'v', until=stopped)}")
        print(f"[{name}] after the restart: {flow(rows, other, 'v', since=restarted)}")
        sent = log.sent("signal", stopped)
        offers = [m for m in sent if (m.get("description") or {}).get("type") == "offer"]
        resets = [m["reset"] for m in sent if m.get("reset")]
        print(f"[{name}] offers sent since the stop: {len(offers)}, resets sent: {resets}")
        print(f"[{name}] console errors since the stop: {errors[pages.index(page)].texts(stopped)}")
        print(f"[{name}] trail: {stats(page).get(other, {}).get('trail')}")
    print(f"media back after coturn returned, in s: {recovered}")
    assert all(0 <= s <= RECOVER_S for s in recovered.values()), f"media not back: {recovered}"

    for page, _name, other, _log in sides:
        wait_for_media(page, [other])
        poll(page, lambda p=page, o=other: relayed(p, o), f"a relay pair toward {other}", 15)
