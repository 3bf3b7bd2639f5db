"""(a) Media through a real TURN relay, and the pre-join connection check, in real Chromium.

A ``turnserver`` is started on free loopback ports with ``use-auth-secret``; Salon is started
with ``SALON_TURN_URLS``/``SALON_TURN_SECRET`` for it. Two people open the room with the
diagnostic ``?ice=relay`` setting (``iceTransportPolicy: "relay"``), so their only candidates
are relay candidates: if media flows, it flowed through coturn, and the selected candidate
pair on both sides says so.

This relay runs with ``PeerPolicy.ANY`` (``allow-loopback-peers``, nothing denied), NOT the
hardened config: both browsers are on this machine, so each relay's peer is a loopback
address that the hardened config refuses on purpose. tests/turn proves the hardened config
(``PeerPolicy.PUBLIC``) refuses loopback and private peers; never deploy ``PeerPolicy.ANY``.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Iterator
from typing import Any

import pytest

from salon.server.coturn import Coturn, start_coturn, stun_binding_answered
from tests.e2e.conftest import Person, loopback_relay, salon_server, stats, tile, wait_for_media
from tests.turn.conftest import SECRET

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def coturn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Coturn]:
    """coturn on 127.0.0.1 that relays between loopback peers (see the module docstring)."""
    config, folder = loopback_relay(tmp_path_factory, "coturn")
    running = start_coturn(config, folder)
    yield running
    running.stop()


def _turn_env(coturn: Coturn, secret: str) -> dict[str, str]:
    return _turn_env_at(coturn.port, secret)


def _turn_env_at(port: int, secret: str) -> dict[str, str]:
    where = f"127.0.0.1:{port}"
    return {
        "SALON_STUN_URLS": json.dumps([f"stun:{where}"]),
        "SALON_TURN_URLS": json.dumps([f"turn:{where}?transport=udp"]),
        "SALON_TURN_SECRET": secret,
    }


@pytest.fixture(scope="module")
def relay_server(coturn: Coturn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Salon handing out credentials signed with coturn's secret."""
    with salon_server(tmp_path_factory.mktemp("salon-relay"), _turn_env(coturn, SECRET)) as url:
        yield url


@pytest.fixture(scope="module")
def wrong_secret_server(coturn: Coturn, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Salon signing credentials with a secret coturn does not know: every Allocate gets 401."""
    data = tmp_path_factory.mktemp("salon-wrong-secret")
    with salon_server(data, _turn_env(coturn, "not-the-secret-coturn-has")) as url:
        yield url


@pytest.fixture(scope="module")
def down_relay_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    """Salon configured for a coturn that was started and then stopped: TURN is down.
    Yields the server's URL and coturn's port (nothing answers there any more)."""
    config, folder = loopback_relay(tmp_path_factory, "coturn-down")
    start_coturn(config, folder).stop()
    data = tmp_path_factory.mktemp("salon-relay-down")
    with salon_server(data, _turn_env_at(config.listening_port, SECRET)) as url:
        yield url, config.listening_port


def _room() -> str:
    """A fresh room id: a room comes to life on its first join (docs/PROTOCOL.md §3.1)."""
    return f"relay-{secrets.token_hex(6)}"


def _join(page: Any, room: str, name: str, query: str = "") -> None:
    page.goto(f"/r/{room}{query}")
    page.get_by_label("Your name").fill(name)
    page.get_by_role("button", name="Join now").click()
    page.get_by_test_id("room").wait_for()


def _selected_pair(page: Any, name: str, timeout: float = 15.0) -> tuple[Any, Any]:
    deadline = time.monotonic() + timeout
    while True:
        peer = stats(page).get(name, {})
        found = (peer.get("localCandidateType"), peer.get("remoteCandidateType"))
        if None not in found or time.monotonic() > deadline:
            return found
        page.wait_for_timeout(500)


def test_two_people_forced_through_the_relay_get_media(person: Person, relay_server: str) -> None:
    alice, bob = person(base_url=relay_server), person(base_url=relay_server)
    room = _room()
    _join(alice, room, "alice", "?ice=relay")
    _join(bob, room, "bob", "?ice=relay")
    wait_for_media(alice, ["bob"])
    wait_for_media(bob, ["alice"])
    # Both ends of the pair ICE selected are relay candidates, as each browser sees it.
    assert _selected_pair(alice, "bob") == ("relay", "relay"), stats(alice)
    assert _selected_pair(bob, "alice") == ("relay", "relay"), stats(bob)


def test_without_the_setting_the_same_call_is_not_relayed(
    person: Person, relay_server: str
) -> None:
    """The control: ``?ice=relay`` is what forced the relay above (host pairs win otherwise)."""
    carol, dave = person(base_url=relay_server), person(base_url=relay_server)
    room = _room()
    _join(carol, room, "carol")
    _join(dave, room, "dave")
    wait_for_media(carol, ["dave"])
    assert _selected_pair(carol, "dave")[0] in ("host", "srflx", "prflx"), stats(carol)


def test_prejoin_check_shows_the_relay_available(person: Person, relay_server: str) -> None:
    page = person(base_url=relay_server)
    page.goto(f"/r/{_room()}")
    page.get_by_test_id("connection-details").locator("summary").click()  # the details
    check = page.get_by_test_id("connection-check")
    relay = check.get_by_test_id("check-relay")
    relay.wait_for(timeout=20_000)
    assert relay.get_attribute("data-verdict") == "ok", relay.inner_text()
    assert "Relay: available" in relay.inner_text()
    assert check.get_by_test_id("check-local").get_attribute("data-verdict") == "ok"


def test_prejoin_check_says_the_relay_refused_the_credentials(
    person: Person, wrong_secret_server: str
) -> None:
    page = person(base_url=wrong_secret_server)
    page.goto(f"/r/{_room()}")
    page.get_by_test_id("connection-details").locator("summary").click()  # the details
    relay = page.get_by_test_id("connection-check").get_by_test_id("check-relay")
    relay.wait_for(timeout=20_000)
    assert relay.get_attribute("data-verdict") == "problem"
    assert "the relay server refused the credentials" in relay.inner_text()


def test_with_the_relay_down_a_direct_call_still_connects(
    person: Person, down_relay_server: tuple[str, int]
) -> None:
    """RELIABILITY row 37: coturn is down, but two people who can reach each other directly
    still get each other's media, over a pair that is not a relay."""
    url, turn_port = down_relay_server
    assert not stun_binding_answered("127.0.0.1", turn_port)  # coturn really is down
    eve, fay = person(base_url=url), person(base_url=url)
    room = _room()
    _join(eve, room, "eve")
    _join(fay, room, "fay")
    wait_for_media(eve, ["fay"])
    wait_for_media(fay, ["eve"])
    assert _selected_pair(eve, "fay")[0] in ("host", "srflx", "prflx"), stats(eve)


def test_a_relay_only_join_with_the_relay_down_says_so_in_time(
    person: Person, down_relay_server: tuple[str, int]
) -> None:
    """RELIABILITY row 37: with only the relay allowed (``?ice=relay``) and coturn down, ICE
    never leaves ``new``; instead of "Connecting…" forever, within the 15 s bound (plus the
    check of this browser's paths, at most 6 s) the tile says it cannot connect and the room
    says the relay server could not be reached."""
    url, _turn_port = down_relay_server
    gus, hal = person(base_url=url), person(base_url=url)
    room = _room()
    _join(gus, room, "gus", "?ice=relay")
    joined = time.monotonic()
    _join(hal, room, "hal", "?ice=relay")
    assert tile(gus, "hal").inner_text().startswith("Connecting…")
    notice = gus.get_by_test_id("media-stuck")
    notice.filter(has_text="the relay server could not be reached").wait_for(timeout=40_000)
    print(f"the room said why after {time.monotonic() - joined:.1f} s: {notice.inner_text()!r}")
    assert "No media connection to hal after 15 seconds." in notice.inner_text()
    assert "only through the relay" in notice.inner_text()
    assert tile(gus, "hal").inner_text().startswith("Can't connect")
    assert stats(gus).get("hal", {}).get("connection") != "connected"
