"""Drain (RELIABILITY row 32) with two real browsers in a call: SIGTERM the server; both are
told ``server_draining``, the server answers not-ready and exits by itself, a new server
starts on the same port, and the call goes on (same member ids, video never stopping)
without anyone pressing anything."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import Person, join_room, new_room, wait_for_media
from tests.e2e.faults import SalonProcess, http_status, now_ms
from tests.e2e.test_resume import (
    RESUME_S,
    check_media_never_stopped,
    check_same_places,
    check_server_log,
    keep_sampling,
    people,
    resumed_welcomes,
    settle,
)
from tests.e2e.watch import banner_report, poll, snapshot_ids

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(400)]

EXIT_S = 45.0  # drain_seconds (30 by default) and some


def test_sigterm_drains_and_the_call_resumes_on_the_next_server(
    person: Person, restartable: SalonProcess
) -> None:
    server = restartable
    sides = people(person, server.url, ("ivy", "jay"))
    room = new_room(sides[0].page)
    for side in sides:
        join_room(side.page, room, side.name)
    settle(sides)
    before = {s.name: snapshot_ids(s.page) for s in sides}
    assert http_status(f"{server.url}/api/v1/ready") == 200

    termed = now_ms()
    server.terminate()
    for side in sides:
        poll(
            side.page,
            lambda s=side: s.log.received("server_draining", termed),
            f"{side.name} to be told server_draining",
            10,
        )
        told = side.log.first_at("server_draining", termed)
        assert told is not None
        draining = side.log.received("server_draining", termed)[0]
        print(f"[{side.name}] server_draining after {(told - termed) / 1000:.2f} s: {draining}")
    ready = http_status(f"{server.url}/api/v1/ready")
    print(f"/api/v1/ready while draining: {ready}")
    assert ready == 503, "the draining server still says it is ready"

    poll(sides[0].page, lambda: not server.running(), "the server to exit by itself", EXIT_S)
    exited = now_ms()
    status = server.wait_exit(1)
    print(f"the server exited by itself {(exited - termed) / 1000:.2f} s after SIGTERM ({status})")
    for side in sides:
        closes = [at for at, _u, what in side.log.sockets if what == "close" and at >= termed]
        at = [round((c - termed) / 1000, 2) for c in closes]
        print(f"[{side.name}] sockets closed during the drain at {at} s after SIGTERM")

    took = server.start(page=sides[0].page)
    restarted = now_ms()
    print(f"new server on port {server.port} in {took:.2f} s")
    for side in sides:
        poll(
            side.page,
            lambda s=side: any(w.get("resumed") for w in s.log.received("welcome", restarted)),
            f"{side.name} to resume on the new server",
            RESUME_S,
        )
        welcome_at = side.log.first_at("welcome", restarted)
        assert welcome_at is not None
        print(f"[{side.name}] resumed {(welcome_at - restarted) / 1000:.2f} s after the restart")
        side.page.get_by_test_id("reconnecting").wait_for(state="detached", timeout=RESUME_S * 1000)
        resumed_welcomes(side, termed)
    keep_sampling(sides[0].page, 3000)

    check_media_never_stopped(sides, "drain and restart")
    for side in sides:
        banner_report(side.name, side.page)
        assert side.log.received("member_left", termed) == [], f"{side.name} saw member_left"
    check_same_places(sides, before)
    wait_for_media(sides[0].page, [sides[1].name])
    wait_for_media(sides[1].page, [sides[0].name])
    check_server_log(server.log())
