"""Two Salon processes behind nginx, in real Chromium (docs/SCALING.md).

Debian's nginx runs the shipped ``deploy/nginx/salon.conf.template`` with a ``server`` line per
process in its upstream (``least_conn``), as docs/SCALING.md tells an operator to; both
processes (``salon serve --http``) share one Redis, the database and the resume secret
(:mod:`tests.integration.cluster`), at the default heartbeat of 1 s. alice's page lands on
one process and bob's on the other (each process's own log says which: the test fails
plainly when nginx did not split them), they decode each other's video, then alice's
process is killed with ``kill -9``. Her page reconnects through nginx to the survivor and
resumes there; bob's socket, piped to the room's home that died, is closed with 1012 and
resumes there too. Media never stops (``getStats()`` sampled inside the pages), nobody sees
``member_left``, the member ids stay, and the chat goes on as one.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from salon.server.tls import ensure_self_signed
from tests.deploy.proxy import DOMAIN, MAIN_CONF, NGINX, TEMPLATE, free_port, render
from tests.e2e.conftest import Person, join_room, new_room
from tests.e2e.faults import http_status, now_ms
from tests.e2e.test_resume import (
    RESUME_S,
    Side,
    check_chat_once,
    check_media_never_stopped,
    check_same_places,
    exchange_chat,
    keep_sampling,
    people,
    resumed_welcomes,
    settle,
    wait_banner_gone,
)
from tests.e2e.watch import banner_report, poll, snapshot_ids
from tests.integration.cluster import Cluster, Node, error_lines, salon_cluster
from tests.support import stop_process

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

NGINX_START_S = 20.0


@contextlib.contextmanager
def nginx_in_front(folder: Path, upstreams: list[str]) -> Iterator[str]:
    """Debian's nginx with the shipped template, its upstream holding one ``server`` line per
    address in ``upstreams``; yields its HTTPS URL. Skips where nginx is not installed."""
    if not os.access(NGINX, os.X_OK):
        reason = f"{NGINX} is missing: install Debian's nginx to run the reverse-proxy tests"
        print(reason)
        pytest.skip(reason)
    prefix = folder / "nginx"
    (prefix / "tmp").mkdir(parents=True)
    cert, key = ensure_self_signed(folder / "certs")
    https_port = free_port()
    values = {
        "SALON_DOMAIN": DOMAIN,
        "SALON_UPSTREAM": upstreams[0],
        "NGINX_HTTPS_PORT": str(https_port),
        "NGINX_HTTP_PORT": str(free_port()),
        "TLS_CERT": str(cert),
        "TLS_KEY": str(key),
    }
    conf = render(TEMPLATE.read_text(), values)
    first = f"server {upstreams[0]};"
    assert conf.count(first) == 1, "the template's upstream has no single `server` line to add to"
    assert "least_conn;" in conf, "the template's upstream does not balance by connections"
    conf = conf.replace(first, "\n    ".join(f"server {address};" for address in upstreams))
    (prefix / "salon.conf").write_text(conf)
    user = "user root;" if os.geteuid() == 0 else ""  # as root, workers use our temp folder
    (prefix / "nginx.conf").write_text(MAIN_CONF.format(prefix=prefix, user=user))
    with (prefix / "stderr.log").open("w") as log:
        nginx = subprocess.Popen(
            [NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g", "daemon off;"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        url = f"https://{DOMAIN}:{https_port}"
        try:
            deadline = time.monotonic() + NGINX_START_S
            while http_status(f"{url}/api/v1/health") != 200:
                if nginx.poll() is not None or time.monotonic() > deadline:
                    error_log = prefix / "error.log"
                    tail = error_log.read_text()[-2000:] if error_log.exists() else ""
                    raise RuntimeError(f"nginx did not come up; {error_log}:\n{tail}")
                time.sleep(0.1)  # polling another process's start: no event to await
            yield url
        finally:
            stop_process(nginx)


def lands_on(cluster: Cluster, side: Side, act: Callable[[], None]) -> Node:
    """Run ``act`` (the page joins a room); the process that holds the page's socket after
    it, by the processes' logs: the one holding one more socket than before, the other
    none more. (The pre-join page's own short socket may have gone to either.) Fails saying
    so when that does not settle."""
    before = [node.websockets_open() for node in cluster.nodes]
    act()

    def one_more() -> list[Node]:
        more = [node.websockets_open() - b for node, b in zip(cluster.nodes, before, strict=True)]
        if sorted(more) != [0] * (len(more) - 1) + [1]:
            return []
        return [node for node, n in zip(cluster.nodes, more, strict=True) if n == 1]

    (node,) = poll(side.page, one_more, f"{side.name}'s socket held by one process", 10)
    print(f"[{side.name}] signaling on {node}; page sockets {side.log.sockets}")
    return node


def test_kill_9_of_one_of_two_processes_behind_nginx_keeps_the_call(
    person: Person, tmp_path: Path
) -> None:
    env = {"SALON_FORWARDED_ALLOW_IPS": "127.0.0.1", "SALON_BUS_HEARTBEAT_SECONDS": "1.0"}
    with (
        salon_cluster(tmp_path, http=True, env=env) as cluster,
        nginx_in_front(tmp_path, [f"127.0.0.1:{n.port}" for n in cluster.nodes]) as url,
    ):
        alice, bob = people(person, url, ("alice", "bob"))
        room = new_room(alice.page)
        alice_on = lands_on(cluster, alice, lambda: join_room(alice.page, room, alice.name))
        bob_on = lands_on(cluster, bob, lambda: join_room(bob.page, room, bob.name))
        assert bob_on is not alice_on, (
            f"nginx sent both pages to {alice_on}: least_conn did not split them, so this test"
            " cannot prove anything about two processes"
        )
        sides = settle((alice, bob))
        exchange_chat(sides, "before the kill")
        before = {s.name: snapshot_ids(s.page) for s in sides}
        accepted = bob_on.websockets_accepted()

        killed = now_ms()
        alice_on.process.kill()
        poll(
            alice.page,
            lambda: any(w.get("resumed") for w in alice.log.received("welcome", killed)),
            "alice's page to resume",
            RESUME_S,
        )
        back = wait_banner_gone(sides, killed)
        print(f"back (banner gone) after the kill, in s: {back}")
        for side in sides:
            welcomes = resumed_welcomes(side, killed)
            assert all(w.get("resumed") for w in welcomes), f"{side.name} started afresh"
        assert bob_on.websockets_accepted() > accepted, "alice's new socket is not on the survivor"
        exchange_chat((bob, alice), "after the kill")
        keep_sampling(alice.page, 3000)

        check_media_never_stopped(sides, "kill -9 of one of two processes")
        for side in sides:
            banner_report(side.name, side.page)
            assert side.log.received("member_left", killed) == [], f"{side.name} saw member_left"
        check_same_places(sides, before)
        check_chat_once(sides, ["before the kill", "after the kill"])
        errors = error_lines(bob_on.log())
        assert errors == [], f"the surviving process logged errors: {errors[:5]}"
