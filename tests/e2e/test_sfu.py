"""Rooms through the SFU in real Chromium (issue #13; docs/SFU.md, PROTOCOL.md §3.10).

A real ``janus`` on free ports and ``salon serve`` pointed at it with the mesh limit lowered
to 2: alice and bob meet in a mesh, carol's join moves the room to Janus, and then all three
decode each other's video and hear each other through Janus (``getStats()`` numbers that
rise), each page sending its camera once: one outbound video stream, not one per peer.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from salon.server.janus import JanusProcess
from tests.e2e.conftest import Person, join_room, new_room, salon_server, wait_for_media
from tests.e2e.faults import PC_TRACKER
from tests.e2e.watch import poll
from tests.turn.conftest import running_janus

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

# Sent video streams of a page: outbound-rtp video reports of its open connections.
OUTBOUND_VIDEO = """
async () => {
  let count = 0;
  for (const pc of window.__pcs) {
    if (pc.connectionState === 'closed') continue;
    const report = await pc.getStats();
    report.forEach((s) => { if (s.type === 'outbound-rtp' && s.kind === 'video') count++; });
  }
  return count;
}
"""


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[JanusProcess]:
    with running_janus(tmp_path_factory.mktemp("janus")) as running:
        yield running


@pytest.fixture(scope="module")
def sfu_server(tmp_path_factory: pytest.TempPathFactory, janus: JanusProcess) -> Iterator[str]:
    env = {
        "SALON_SFU_URL": janus.config.url,
        "SALON_SFU_API_SECRET": janus.config.api_secret,
        "SALON_SFU_ADMIN_KEY": janus.config.admin_key,
        "SALON_SFU_MESH_LIMIT": "2",
        "SALON_SFU_CHECK_SECONDS": "0.5",
    }
    with salon_server(tmp_path_factory.mktemp("salon-sfu"), env) as url:
        yield url


def _media_route(page: Any) -> str:
    return str(page.evaluate("window.__salon ? window.__salon.media() : ''"))


def test_a_third_person_moves_the_room_to_janus_and_everyone_sees_everyone(
    person: Person, sfu_server: str, janus: JanusProcess
) -> None:
    names = ["alice", "bob", "carol"]
    pages = {}
    for name in names:
        page = person(base_url=sfu_server)
        page.context.add_init_script(PC_TRACKER)
        pages[name] = page
    room = new_room(pages["alice"])
    join_room(pages["alice"], room, "alice")
    join_room(pages["bob"], room, "bob")
    wait_for_media(pages["alice"], ["bob"])  # two people: a mesh
    assert _media_route(pages["alice"]) == "mesh"
    join_room(pages["carol"], room, "carol")
    for name, page in pages.items():
        poll(page, lambda p=page: _media_route(p) == "sfu", f"{name}'s room on the SFU", 15)
    for name, page in pages.items():
        wait_for_media(page, [n for n in names if n != name])
    for name, page in pages.items():
        sent = page.evaluate(OUTBOUND_VIDEO)
        assert sent == 1, f"{name} sends {sent} video streams, not one to the SFU"
