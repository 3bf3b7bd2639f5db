"""``/metrics`` on the real server: a scripted session, then every counter equals what
happened (Prometheus text parsed with prometheus-client's own parser); the token rule; the
database hook; the Grafana dashboard queries only metrics that exist."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from salon.core.errors import SalonError
from salon.protocol import ErrorCode
from salon.store.database import GuardedEngine, open_database, watch_work
from tests.integration.peer import Peer
from tests.integration.rest import same_origin_headers
from tests.integration.server import RunningServer, running_server

TOKEN = "metrics-token-" + "x" * 20
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DASHBOARD = Path(__file__).resolve().parents[2] / "deploy" / "grafana" / "salon.json"

Samples = dict[str, dict[frozenset[tuple[str, str]], float]]


class Counted(Peer):
    """A peer whose every frame is tallied by type in :attr:`sent` (shared by all)."""

    sent: ClassVar[Counter[str]] = Counter()

    async def send(self, **message: Any) -> None:
        Counted.sent[message["type"]] += 1
        await super().send(**message)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    options = {
        "metrics_token": TOKEN,
        "turn_urls": ["turn:turn.example.org:3478"],
        "turn_secret": "s" * 32,
    }
    with running_server(tmp_path, options=options) as running:
        yield running


async def scrape(server: RunningServer) -> Samples:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
        response = await http.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = frozenset(sample.labels.items())
            samples.setdefault(sample.name, {})[labels] = sample.value
    return samples


def by(samples: Samples, name: str, label: str) -> dict[str, float]:
    """One metric's samples keyed by one label's value."""
    return {dict(labels)[label]: value for labels, value in samples[name].items()}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[name][frozenset(labels.items())]


async def heard(peer: Peer) -> list[dict[str, Any]]:
    """What reached ``peer`` so far: a ping's pong marks the end (no sleeps)."""
    ref = f"mark-{Counted.sent['ping']}"
    await peer.send(type="ping", ref=ref)
    got: list[dict[str, Any]] = []
    while True:
        message = await peer.recv()
        if message["type"] == "pong" and message.get("ref") == ref:
            return got
        got.append(message)


async def ring(caller: Peer, callee: Peer) -> str:
    await caller.send(type="call", name=callee.name)
    call: str = (await caller.expect("ringing"))["call"]
    assert (await callee.expect("incoming_call"))["call"] == call
    return call


async def sign_ins(server: RunningServer) -> None:
    """One sign-up; sign-ins: ok, wrong password, 5 unknown then throttled, one invalid."""
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as page:
        page.headers.update(await same_origin_headers(page, server.base_url))
        body = {"username": "ada", "password": "correct horse"}
        assert (await page.post("/api/v1/accounts", json=body)).status_code == 201
        assert (await page.post("/api/v1/session", json=body)).status_code == 200
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as other:
        other.headers.update(await same_origin_headers(other, server.base_url))
        wrong = {"username": "ada", "password": "wrong horse"}
        assert (await other.post("/api/v1/session", json=wrong)).status_code == 401
        nobody = {"username": "nobody", "password": "any password"}
        for _ in range(5):  # account_attempts_burst
            assert (await other.post("/api/v1/session", json=nobody)).status_code == 401
        assert (await other.post("/api/v1/session", json=nobody)).status_code == 429
        too_long = {"username": "ada", "password": "p" * 2000}
        assert (await other.post("/api/v1/session", json=too_long)).status_code == 422
        # An unknown page: counted under "unmatched", its path (and query) never a label.
        assert (await other.get("/no-such/secret-path?token=abc")).status_code == 404


async def test_counters_equal_a_scripted_session(server: RunningServer) -> None:
    Counted.sent.clear()
    alice = await Counted.greeted(server, "alice")
    bob = await Counted.greeted(server, "bob")
    carol = await Counted.greeted(server, "carol", reachable=True)
    dave = await Counted.greeted(server, "dave", reachable=True)
    eve = await Counted.greeted(server, "eve")

    # Two members in a meeting, chat and a signal; alice (first in) hosts it and turns the
    # lobby on, so eve waits.
    await alice.join("salon")
    await bob.join("salon")
    await alice.send(type="chat", text="hello there")
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "c", "sdpMid": "0"})
    await heard(alice)  # alice's frames are handled: what they sent bob is queued
    assert [m["type"] for m in await heard(bob)] == ["chat", "signal"]
    await alice.send(type="room_lobby", enabled=True)
    await eve.send(type="join", room="salon")
    await eve.expect("lobby_waiting")
    await heard(alice)

    # A bad frame.
    await alice.send_raw("{not json")
    await alice.error("bad_json")

    # A direct call declined, then one accepted.
    call = await ring(carol, dave)
    await dave.send(type="call_decline", call=call)
    for peer in (carol, dave):
        assert (await peer.expect("call_ended"))["reason"] == "declined"
    call = await ring(carol, dave)
    await dave.send(type="call_accept", call=call)
    for peer in (carol, dave):
        await peer.expect("call_accepted")
        await peer.expect("joined")

    # bob's network drops (no close frame); a signal to him meanwhile is kept for him, so
    # it is not timed as a relay; he resumes with his token.
    bob.ws.transport.abort()
    while (await alice.recv())["type"] != "member_reconnecting":
        pass
    await alice.send(type="signal", to=bob.id, candidate={"candidate": "d", "sdpMid": "0"})
    assert "error" not in [m["type"] for m in await heard(alice)]
    resumed = await Counted.connect(server)
    welcome = await resumed.hello("bob", resume=bob.token)
    assert welcome["resumed"]["room"] == "salon"
    assert "signal" in [m["type"] for m in await heard(resumed)]

    live = await scrape(server)
    assert value(live, "salon_websocket_connections") == 5
    assert value(live, "salon_members_online") == 5
    assert by(live, "salon_rooms", "mode") == {"mesh": 1, "call": 1}
    assert by(live, "salon_room_members", "mode") == {"mesh": 2, "call": 2}
    assert value(live, "salon_lobby_waiting") == 1

    await sign_ins(server)

    # bob leaves; alice closes; the meeting ends and eve, still waiting, is turned away.
    await resumed.send(type="leave")
    await resumed.expect("left")
    await alice.close()
    assert (await eve.expect("lobby_denied"))["reason"] == "ended"

    done = await scrape(server)
    frames = by(done, "salon_client_messages_total", "type")
    assert {k: v for k, v in frames.items() if v} == dict(Counted.sent)
    assert "hello" in frames and "end_meeting" in frames  # every type, 0 until seen
    errors = by(done, "salon_errors_total", "code")
    assert {k: v for k, v in errors.items() if v} == {"bad_json": 1}
    assert set(errors) == {c.value for c in ErrorCode}
    assert by(done, "salon_direct_calls_total", "outcome") == {
        "accepted": 1,
        "declined": 1,
        "cancelled": 0,
        "timeout": 0,
        "offline": 0,
        "busy": 0,
    }
    assert by(done, "salon_resumes_total", "outcome") == {"held": 1, "rebuilt": 0, "failed": 0}
    assert value(done, "salon_meetings_started_total") == 1
    assert by(done, "salon_meetings_ended_total", "reason") == {"empty": 1, "ended": 0}
    assert value(done, "salon_meeting_members_joined_total") == 2
    left = by(done, "salon_meeting_members_left_total", "reason")
    assert left["removed"] == left["ended"] == 0
    # bob left; alice closed the socket (1000) without leaving first, which the core reports
    # as "left" or "disconnected" (salon.core.observe.MemberLeftReason).
    assert left["left"] >= 1 and left["left"] + left["disconnected"] == 2
    assert done["salon_websocket_closes_total"] == {
        # A connection lost after the handshake: uvicorn reports 1005 (no status received).
        frozenset({("code", "1005"), ("by", "client")}): 1,
        frozenset({("code", "1000"), ("by", "client")}): 1,
    }
    assert by(done, "salon_sign_ins_total", "result") == {
        "ok": 1,
        "wrong_password": 1,
        "unknown_account": 5,
        "throttled": 1,
        "invalid": 1,
    }
    assert value(done, "salon_turn_credentials_issued_total") == 6  # one per welcome
    assert value(done, "salon_handshake_duration_seconds_count") == 6
    assert value(done, "salon_relay_latency_seconds_count") == 1
    assert 0 < value(done, "salon_relay_latency_seconds_sum") < 1
    assert value(done, "salon_database_duration_seconds_count", outcome="ok") > 0
    assert value(done, "salon_database_duration_seconds_count", outcome="error") == 0
    http = {
        (d["route"], d["method"], d["status"]): v
        for d, v in ((dict(k), v) for k, v in done["salon_http_requests_total"].items())
    }
    session = "/api/v1/session"
    assert http[(session, "POST", "200")] == 1
    assert http[(session, "POST", "401")] == 6
    assert http[(session, "POST", "429")] == 1
    assert http[(session, "POST", "422")] == 1
    assert http[("/api/v1/accounts", "POST", "201")] == 1
    assert http[("/api/v1/csrf", "GET", "200")] == 2
    assert http[("unmatched", "GET", "404")] == 1
    assert http[("/metrics", "GET", "200")] >= 1
    assert not [k for k in http if "secret" in "".join(k)]
    assert value(done, "salon_websocket_connections") == 4
    assert value(done, "salon_lobby_waiting") == 0
    assert value(done, "process_resident_memory_bytes") > 0
    for peer in (resumed, carol, dave, eve):
        await peer.close()


async def test_metrics_need_the_token(server: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as http:
        missing = await http.get("/metrics")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"].startswith("Bearer")
        assert "salon_" not in missing.text
        wrong = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}x"})
        assert wrong.status_code == 401
        basic = await http.get("/metrics", headers={"Authorization": f"Basic {TOKEN}"})
        assert basic.status_code == 401
        assert (await http.get("/metrics", headers=AUTH)).status_code == 200


def test_metrics_are_off_without_a_token(tmp_path: Path) -> None:
    with running_server(tmp_path, http=True) as server:
        response = httpx.get(f"{server.base_url}/metrics", headers=AUTH)
        assert response.status_code == 404
        assert "salon_" not in response.text


async def test_database_work_is_reported_ok_or_error(tmp_path: Path) -> None:
    seen: list[tuple[float, bool]] = []
    engine = await open_database(f"sqlite+aiosqlite:///{tmp_path / 'salon.db'}")
    try:
        guarded = GuardedEngine(engine)
        watch_work(engine, lambda seconds, ok: seen.append((seconds, ok)))
        async with guarded.connect() as conn:
            await conn.execute(text("select 1"))
        with pytest.raises(SalonError) as failed:
            async with guarded.connect() as conn:
                await conn.execute(text("select * from no_such_table"))
        assert failed.value.code is ErrorCode.STORE_UNAVAILABLE
        with pytest.raises(ValueError, match="the caller's"):
            async with guarded.begin():
                raise ValueError("the caller's own")  # the database did its part
        watch_work(engine, None)
        async with guarded.connect() as conn:
            await conn.execute(text("select 1"))
    finally:
        await engine.dispose()
    assert [ok for _, ok in seen] == [True, False, True]
    assert all(0 <= seconds < 5 for seconds, _ in seen)


def test_the_dashboard_queries_only_metrics_that_exist(tmp_path: Path) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    queries = [
        target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])
    ]
    assert len(queries) >= 10
    with running_server(tmp_path, http=True, options={"metrics_token": TOKEN}) as server:
        exposed = httpx.get(f"{server.base_url}/metrics", headers=AUTH).text
    names = {
        sample.name
        for family in text_string_to_metric_families(exposed)
        for sample in family.samples
    } | {line.split()[2] for line in exposed.splitlines() if line.startswith("# TYPE")}
    queried = {name for q in queries for name in re.findall(r"\b(?:salon|process)_\w+", q)}
    assert queried, queries
    assert queried <= names, sorted(queried - names)
