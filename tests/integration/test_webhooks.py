"""Webhooks (issue #16): a receiver started here gets each meeting event of a scripted session
once, in order, signed as Standard Webhooks says; while it is down the deliveries are retried
and arrive when it is back (after a restart of Salon too); while it hangs, signaling stays
fast; attempts are visible through the API; every limit is refused.

The receiver is a small HTTP/1.1 server on asyncio (this test's loop); Salon runs in its own
thread, so nothing the receiver does can stall it but Salon itself.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import logging
import re
import socket
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from salon.core.clock import SystemClock
from salon.core.observe import MeetingEvent
from salon.core.settings import WebhookSettings
from salon.server.webhooks import EVENT_TYPES, WebhookService, new_secret
from salon.store.apikeys import SqlApiKeyRepository
from salon.store.database import open_database
from salon.store.webhooks import Delivery, DeliveryIds, SqlWebhookRepository
from tests.integration.peer import Peer
from tests.integration.postgres import Cluster
from tests.integration.server import RunningServer, running_server

TIMEOUT = 10.0
T = TypeVar("T")

FAST = {"timeout_seconds": 10.0, "max_backoff_seconds": 0.2}
"""A short backoff: a failing endpoint is tried again within a fifth of a second. A receiver
that answers is never timed out, even on a loaded machine (a half-second timeout once made an
answered delivery count a second attempt); the hanging receiver's test shortens it."""


# --------------------------------------------------------------------------- receiver


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]


class Receiver:
    """An HTTP endpoint that records each POST and answers ``status`` (None: never answers,
    keeping the connection open)."""

    def __init__(self) -> None:
        self.status: int | None = 200
        self.delay = 0.0  # seconds before each answer (a slow receiver)
        self.port = 0
        self.requests: asyncio.Queue[Received] = asyncio.Queue()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook?token=abc"

    async def start(self, port: int = 0) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.close()
        await self._server.wait_closed()

    async def next(self, timeout: float = TIMEOUT) -> Received:
        return await asyncio.wait_for(self.requests.get(), timeout)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                assert lines[0].startswith("POST /hook?token=abc HTTP/1.1"), lines[0]
                headers = {}
                for line in lines[1:]:
                    if line:
                        name, _, value = line.partition(":")
                        headers[name.strip().lower()] = value.strip()
                body = await reader.readexactly(int(headers["content-length"]))
                self.requests.put_nowait(Received(headers, body))
                if self.status is None:
                    await reader.read()  # until Salon gives up and closes
                    return
                await asyncio.sleep(self.delay)
                answer = f"HTTP/1.1 {self.status} X\r\nContent-Length: 2\r\n\r\nok"
                writer.write(answer.encode())
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._writers.discard(writer)
            writer.close()


@asynccontextmanager
async def receiving(port: int = 0) -> AsyncIterator[Receiver]:
    receiver = Receiver()
    await receiver.start(port)
    try:
        yield receiver
    finally:
        await receiver.stop()


def free_port() -> int:
    """A port nothing listens on (for a receiver that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def verify(received: Received, secret: str) -> dict[str, Any]:
    """Check the Standard Webhooks signature of a request as a receiver would, independently
    of Salon's code; the event it carries."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    msg_id, stamp = received.headers["webhook-id"], received.headers["webhook-timestamp"]
    assert abs(int(stamp) - time.time()) < 300  # the spec's replay window
    signed = msg_id.encode() + b"." + stamp.encode() + b"." + received.body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    versions = received.headers["webhook-signature"].split(" ")
    assert any(hmac.compare_digest(v, f"v1,{expected}") for v in versions), versions
    assert received.headers["content-type"] == "application/json"
    return received.event


# ------------------------------------------------------------------------- the API


async def api_key(server: RunningServer, *scopes: str) -> str:
    """A fresh API key (all scopes unless some are named), made as ``salon api-key create``
    does, in the server's database."""
    engine = await open_database(server.settings.sqlalchemy_url())
    try:
        made = await SqlApiKeyRepository(engine).create("webhook tests", scopes, 0)
    finally:
        await engine.dispose()
    return made.token


@asynccontextmanager
async def api(server: RunningServer, *scopes: str) -> AsyncIterator[httpx.AsyncClient]:
    token = await api_key(server, *scopes)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(
        base_url=server.base_url + "/api/v1", headers=headers, verify=server.ssl_context or True
    ) as client:
        yield client


async def register(http: httpx.AsyncClient, url: str, **body: Any) -> dict[str, Any]:
    response = await http.post("/webhooks", json={"url": url, **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def deliveries(http: httpx.AsyncClient, hook: str, **query: Any) -> list[dict[str, Any]]:
    response = await http.get(f"/webhooks/{hook}/deliveries", params=query)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["deliveries"]
    return found


async def until(check: Callable[[], Awaitable[T | None]], timeout: float = TIMEOUT) -> T:
    """Ask ``check`` again until it gives something (the API has no push: this polls)."""
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if found:
            return found
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


def server_with(tmp_path: Path, **webhooks: Any) -> Any:
    return running_server(tmp_path, http=True, options={"webhooks": WebhookSettings(**webhooks)})


async def meeting(server: RunningServer) -> None:
    """Two members join room ``r``, one leaves, the last leaves: the meeting ends."""
    ann = await Peer.greeted(server, "Ann")
    bob = await Peer.greeted(server, "Bob")
    await ann.join("r")
    await bob.join("r")
    await bob.send(type="leave")
    await skip_to(bob, "left")
    await ann.send(type="leave")
    await skip_to(ann, "left")
    await ann.close()
    await bob.close()


async def skip_to(peer: Peer, kind: str) -> dict[str, Any]:
    """The next message of this type; what comes before it does not matter here."""
    while True:
        message = await peer.recv()
        if message["type"] == kind:
            return message


# --------------------------------------------------------------------------- tests


async def test_each_event_arrives_once_signed_and_in_order(tmp_path: Path) -> None:
    with server_with(tmp_path, **FAST) as server:
        async with api(server) as http, receiving() as every, receiving() as some:
            all_hook = await register(http, every.url)
            assert all_hook["events"] == [
                "meeting_started",
                "meeting_ended",
                "member_joined",
                "member_left",
                "recording_ready",
            ]
            assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", all_hook["secret"])
            events = ["meeting_ended", "meeting_started"]
            some_hook = await register(http, some.url, events=events)
            assert some_hook["events"] == ["meeting_started", "meeting_ended"]

            await meeting(server)

            got = [verify(await every.next(), all_hook["secret"]) for _ in range(6)]
            assert [(e["type"], e["data"].get("name")) for e in got] == [
                ("meeting_started", None),
                ("member_joined", "Ann"),
                ("member_joined", "Bob"),
                ("member_left", "Bob"),
                ("member_left", "Ann"),
                ("meeting_ended", None),
            ]
            started, ann_in, bob_in, bob_out, ann_out, ended = got
            assert started["data"] == {"room": "r"}
            assert ann_in["data"] == {
                "room": "r",
                "member": ann_in["data"]["member"],
                "name": "Ann",
                "account": None,
                "host": True,  # the first in an ordinary room
            }
            assert bob_in["data"]["host"] is False
            assert bob_out["data"]["reason"] == "left" and "host" not in bob_out["data"]
            assert ann_out["data"]["member"] == ann_in["data"]["member"]
            assert ended["data"] == {"room": "r", "reason": "empty"}
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", ended["timestamp"])

            picked = [verify(await some.next(), some_hook["secret"]) for _ in range(2)]
            assert [e["type"] for e in picked] == ["meeting_started", "meeting_ended"]

            # Once: every delivery is delivered after one attempt, and nothing more came. The
            # receiver has answered the last one, but Salon may not have recorded it yet.
            for hook, count in ((all_hook, 6), (some_hook, 2)):

                async def settled(hook_id: str = hook["id"]) -> list[dict[str, Any]] | None:
                    rows = await deliveries(http, hook_id)
                    return None if any(r["status"] == "pending" for r in rows) else rows

                rows = await until(settled)
                assert len(rows) == count
                assert {(r["status"], r["attempts"]) for r in rows} == {("delivered", 1)}
                assert {r["last_status_code"] for r in rows} == {200}
            assert every.requests.empty() and some.requests.empty()


async def test_a_receiver_that_is_down_gets_the_events_when_it_is_back(tmp_path: Path) -> None:
    port = free_port()
    with server_with(tmp_path, **FAST) as server:
        async with api(server) as http:
            hook = await register(http, f"http://127.0.0.1:{port}/hook?token=abc")
            await meeting(server)

            async def retried() -> list[dict[str, Any]] | None:
                rows = await deliveries(http, hook["id"])
                return rows if rows and all(r["attempts"] >= 2 for r in rows[-1:]) else None

            first = (await until(retried))[-1]  # the oldest: the others wait behind it
            assert (first["status"], first["last_error"]) == ("pending", "could not connect")
            assert first["last_status_code"] is None and first["next_attempt_ms"] is not None
            assert "token=abc" not in json.dumps(first)

            async with receiving(port) as receiver:
                got = [await receiver.next() for _ in range(6)]
                events = [verify(r, hook["secret"])["type"] for r in got]
                assert events == [
                    "meeting_started",
                    "member_joined",
                    "member_joined",
                    "member_left",
                    "member_left",
                    "meeting_ended",
                ]
                assert got[0].id == first["id"]  # the webhook-id stays across attempts

                async def delivered() -> list[dict[str, Any]] | None:
                    rows = await deliveries(http, hook["id"], status="delivered")
                    return rows if len(rows) == 6 else None

                rows = await until(delivered)
                assert rows[-1]["attempts"] >= 3 and rows[-1]["last_error"] is None
                assert await deliveries(http, hook["id"], status="pending") == []


async def test_a_hanging_receiver_does_not_slow_signaling(tmp_path: Path) -> None:
    with server_with(tmp_path, **{**FAST, "timeout_seconds": 0.5}) as server:
        async with api(server) as http, receiving() as receiver:
            receiver.status = None  # accepts, reads, never answers
            hooks = [await register(http, receiver.url) for _ in range(3)]
            ann = await Peer.greeted(server, "Ann")
            await ann.join("r")  # two events for each endpoint, all hanging
            bob = await Peer.greeted(server, "Bob")
            await bob.join("r")
            await skip_to(ann, "member_joined")
            first = await receiver.next()
            # Signaling round trips while every delivery hangs and times out, again and again.
            took = []
            for i in range(40):
                started = time.monotonic()
                if i % 8 == 0:  # within the chat's burst
                    await bob.send(type="chat", text=f"hello {i}", id=f"m{i}")
                    await skip_to(ann, "chat")
                    await skip_to(bob, "chat")
                await ann.alive()
                took.append(time.monotonic() - started)
                await asyncio.sleep(0.02)  # spread over several timeouts of the deliveries
            # A delivery that held the event loop would hold it for its 0.5 s timeout, at
            # every attempt of the six: most round trips would be that slow, not one stalled
            # by a loaded machine.
            assert statistics.median(took) < 0.1, took
            again = await receiver.next()
            while again.id != first.id:  # the first delivery of that endpoint, tried again
                again = await receiver.next()
            assert again.body == first.body

            async def timed_out() -> dict[str, Any] | None:
                rows = await deliveries(http, hooks[0]["id"])
                oldest = rows[-1]
                return oldest if oldest["attempts"] >= 2 else None

            oldest = await until(timed_out)
            assert oldest["status"] == "pending"
            assert (oldest["last_status_code"], oldest["last_error"]) == (
                None,
                "no answer within 0.5 s",
            )

            receiver.status = 204  # it answers again: everything arrives
            for hook in hooks:

                async def done(hook_id: str = hook["id"]) -> bool:
                    rows = await deliveries(http, hook_id, status="delivered")
                    return len(rows) == 3  # meeting_started, two member_joined

                await until(done)
            await ann.close()
            await bob.close()


async def test_attempts_are_visible_and_a_delivery_fails_after_max_attempts(
    tmp_path: Path,
) -> None:
    with server_with(tmp_path, max_attempts=3, **FAST) as server:
        async with api(server) as http, receiving() as receiver:
            receiver.status = 503
            hook = await register(http, receiver.url, events=["meeting_started"])
            ann = await Peer.greeted(server, "Ann")
            await ann.join("r")
            tries = [await receiver.next() for _ in range(3)]
            assert len({r.id for r in tries}) == 1  # one delivery, tried three times
            for attempt in tries:
                verify(attempt, hook["secret"])  # signed anew each time

            async def failed() -> list[dict[str, Any]] | None:
                return await deliveries(http, hook["id"], status="failed") or None

            (row,) = await until(failed)
            assert row["id"] == tries[0].id
            assert (row["attempts"], row["last_status_code"]) == (3, 503)
            assert row["last_error"] == "answered HTTP 503"
            assert row["next_attempt_ms"] is None and row["delivered_ms"] is None
            assert row["event_type"] == "meeting_started"
            assert await deliveries(http, hook["id"], status="pending") == []
            assert receiver.requests.empty()

            # Backoff between attempts: about min(2**(n-1), 0.2) s, never at once.
            gaps = [b.at - a.at for a, b in itertools.pairwise(tries)]
            assert all(g > 0.15 for g in gaps), gaps
            await ann.close()


async def test_pending_deliveries_survive_a_restart(tmp_path: Path) -> None:
    port = free_port()
    with server_with(tmp_path, **FAST) as server:
        async with api(server) as http:
            hook = await register(http, f"http://127.0.0.1:{port}/hook?token=abc")
            ann = await Peer.greeted(server, "Ann")
            await ann.join("r")

            async def tried() -> bool:
                rows = await deliveries(http, hook["id"])
                return len(rows) == 2 and rows[-1]["attempts"] >= 1

            await until(tried)
            await ann.close()
    async with receiving(port) as receiver:
        with server_with(tmp_path, **FAST) as server:
            got = [verify(await receiver.next(), hook["secret"])["type"] for _ in range(2)]
            assert got == ["meeting_started", "member_joined"]


async def test_api_lists_removes_and_refuses(tmp_path: Path) -> None:
    with server_with(tmp_path, max_endpoints=2) as server:
        async with api(server) as http:
            long_url = "https://example.org/" + "a" * (2000 - len("https://example.org/"))
            first = await register(http, long_url)  # exactly 2000 characters
            for url, events in (
                (long_url + "a", None),  # 2001 characters
                ("ftp://example.org/hook", None),
                ("https:///no-host", None),
                ("example.org/hook", None),
                ("https://example.org/a b", None),
                ("https://example.org/hook", []),
            ):
                body: dict[str, Any] = {"url": url}
                if events is not None:
                    body["events"] = events
                refused = await http.post("/webhooks", json=body)
                assert refused.status_code == 422, (url, refused.text)
                assert refused.json()["detail"]["code"] == "invalid_webhook"
            unknown = await http.post("/webhooks", json={"url": long_url, "events": ["nope"]})
            assert unknown.status_code == 422

            second = await register(http, "http://127.0.0.1:9/hook", events=["member_left"])
            third = await http.post("/webhooks", json={"url": "https://example.org/3"})
            assert third.status_code == 409
            assert third.json()["detail"]["code"] == "too_many_webhooks"

            listed = (await http.get("/webhooks")).json()["webhooks"]
            assert [h["id"] for h in listed] == [first["id"], second["id"]]
            assert listed[1] == {k: v for k, v in second.items() if k != "secret"}
            assert "secret" not in json.dumps(listed)

            assert (await http.delete(f"/webhooks/{second['id']}")).status_code == 204
            gone = await http.delete(f"/webhooks/{second['id']}")
            assert (gone.status_code, gone.json()["detail"]["code"]) == (404, "no_such_webhook")
            missing = await http.get(f"/webhooks/{second['id']}/deliveries")
            assert missing.status_code == 404
            assert (await http.post("/webhooks", json={"url": "http://x.org/"})).status_code == 201

            base = f"/webhooks/{first['id']}/deliveries"
            assert (await http.get(base, params={"limit": 500})).status_code == 200
            for bad in ({"limit": 0}, {"limit": 501}, {"status": "lost"}):
                assert (await http.get(base, params=bad)).status_code == 422, bad

        async with api(server, "meetings:read", "meetings:write") as http:
            refused = await http.get("/webhooks")
            assert refused.status_code == 403
            assert refused.json()["detail"]["code"] == "insufficient_scope"
        async with httpx.AsyncClient(base_url=server.base_url) as anonymous:
            response = await anonymous.get("/api/v1/webhooks")
            assert response.status_code == 401
            assert response.json()["detail"]["code"] == "invalid_api_key"


async def test_the_limit_of_deliveries_listed(tmp_path: Path) -> None:
    with server_with(tmp_path, **FAST) as server:
        async with api(server) as http, receiving() as receiver:
            hook = await register(http, receiver.url)
            await meeting(server)
            for _ in range(6):
                await receiver.next()

            async def settled() -> list[dict[str, Any]] | None:
                # The receiver has answered the last one; Salon may not have recorded it yet.
                rows = await deliveries(http, hook["id"])
                return None if any(r["status"] == "pending" for r in rows) else rows

            everything = await until(settled)
            newest = await deliveries(http, hook["id"], limit=2)
            assert len(everything) == 6
            assert newest == everything[:2]
            assert [r["event_type"] for r in newest] == ["meeting_ended", "member_left"]


@pytest.mark.parametrize("events", [["member_joined"], None])
async def test_cli_registered_endpoints_get_events(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], events: list[str] | None
) -> None:
    """``salon webhook add`` writes to the database the server reads: the server delivers to
    an endpoint it did not register itself."""
    from salon.cli import main

    async with receiving() as receiver:
        with server_with(tmp_path, **FAST) as server:
            argv = ["webhook", "add", receiver.url, "--data-dir", str(tmp_path)]
            for event in events or []:
                argv += ["--event", event]
            assert await asyncio.to_thread(main, argv) == 0
            secret = capsys.readouterr().out.strip()  # the secret alone on stdout
            await meeting(server)
            got = verify(await receiver.next(), secret)
            assert got["type"] == ("member_joined" if events else "meeting_started")
            assert (
                await asyncio.to_thread(main, ["webhook", "list", "--data-dir", str(tmp_path)]) == 0
            )
            listing = capsys.readouterr().out
            assert receiver.url in listing and secret not in listing
            hook_id = listing.splitlines()[1].split()[0]
            remove = ["webhook", "remove", hook_id, "--data-dir", str(tmp_path)]
            assert await asyncio.to_thread(main, remove) == 0
            assert await asyncio.to_thread(main, remove) == 2  # gone already


# ------------------------------------------------- the service on its own, with a real store


def joined(i: int) -> MeetingEvent:
    return MeetingEvent("member_joined", "r", SystemClock().wall_ms(), f"m{i}", f"N{i}")


@asynccontextmanager
async def service_on(url: str, **settings: Any) -> AsyncIterator[WebhookService]:
    """A webhook service on the database at ``url``, not started."""
    engine = await open_database(url)
    service = WebhookService(
        SqlWebhookRepository(engine), WebhookSettings(**settings), SystemClock()
    )
    try:
        yield service
    finally:
        await service.stop()
        await engine.dispose()


def sqlite(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'salon.db'}"


async def test_a_full_queue_drops_the_oldest_events_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with service_on(sqlite(tmp_path), queue_events=10, **FAST) as service:
        down = f"http://127.0.0.1:{free_port()}/hook"
        hook = await service.store.add(down, new_secret(), EVENT_TYPES, 0, 20)
        for i in range(15):
            service.meeting(joined(i))  # the writer does not run yet: the queue fills up
        assert service.dropped == 5
        service.start()

        async def stored() -> list[Delivery] | None:
            rows = await service.store.deliveries(hook.id, limit=100)
            return rows if len(rows) == 10 else None

        rows = await until(stored)
        members = [json.loads(r.payload)["data"]["member"] for r in reversed(rows)]
        assert members == [f"m{i}" for i in range(5, 15)]  # the newest ten, in order
        assert "5 events dropped (queue of 10 full)" in caplog.text


async def test_two_processes_on_one_database_send_each_delivery_once_in_order(
    tmp_path: Path,
) -> None:
    """Several processes share one database (docs/SCALING.md): each dispatcher reads the same
    pending deliveries, and one claim on each attempt keeps each event to one POST, one at a
    time per endpoint, in order, each counted as one attempt."""
    url = sqlite(tmp_path)
    async with (
        receiving() as receiver,
        service_on(url, **FAST) as first,
        service_on(url, **FAST) as second,
    ):
        receiver.delay = 0.2  # both dispatchers read each head while its attempt runs
        hook = await first.store.add(receiver.url, new_secret(), EVENT_TYPES, 0, 20)
        ids, now = DeliveryIds(), SystemClock().wall_ms()
        stored = [
            Delivery(
                ids.next(now), hook.id, "member_joined", f'{{"n": {i}}}', now, "pending", 0, now
            )
            for i in range(5)
        ]
        await first.store.enqueue(stored)
        first.start()
        second.start()
        got = [await receiver.next() for _ in stored]
        assert [r.id for r in got] == [x.id for x in stored]

        async def settled() -> list[Delivery] | None:
            rows = await first.store.deliveries(hook.id)
            return rows if all(r.status == "delivered" for r in rows) else None

        assert [r.attempts for r in await until(settled)] == [1] * len(stored)
        with pytest.raises(TimeoutError):  # and no second POST of any: a short look
            await receiver.next(timeout=1.0)


async def test_an_attempt_cut_short_by_a_stop_is_due_again_at_once(tmp_path: Path) -> None:
    """A stop in the middle of an attempt gives its claim back: after a restart the delivery
    is sent again at once, not when the claim (timeout + 30 s) would have ended."""
    url = sqlite(tmp_path)
    async with receiving() as receiver:
        receiver.status = None  # takes the POST and never answers
        async with service_on(url, **FAST) as service:
            hook = await service.store.add(receiver.url, new_secret(), EVENT_TYPES, 0, 20)
            service.start()
            service.meeting(joined(0))
            first = await receiver.next()
        # stopped mid-attempt (service_on stops it)
        async with service_on(url, **FAST) as again:
            (row,) = await again.store.deliveries(hook.id)
            assert row.status == "pending" and row.attempts == 0
            assert row.next_attempt_ms <= SystemClock().wall_ms(), "still claimed"
            receiver.status = 200
            again.start()
            assert (await receiver.next(timeout=5.0)).id == first.id


async def test_the_dispatcher_stops_when_woken_and_cancelled_at_once(tmp_path: Path) -> None:
    # On Python 3.11, asyncio.wait_for returned the result of a wait that finished in the same
    # loop turn as the cancellation and swallowed the cancellation: the dispatcher went on
    # waiting and stop(), which cancels it and waits for it, never returned.
    # It needs a wait with a deadline: a delivery to try again in a second or so.
    async with service_on(sqlite(tmp_path), max_backoff_seconds=60.0) as service:
        down = f"http://127.0.0.1:{free_port()}/hook"
        await service.store.add(down, new_secret(), EVENT_TYPES, 0, 20)
        service.start()
        service.meeting(joined(0))
        dispatcher = service._tasks[1]
        assert dispatcher.get_coro().__qualname__ == "WebhookService._dispatch"  # type: ignore[union-attr]

        async def waiting() -> bool:  # the first attempt failed, the retry is not due yet
            waiters = service._wake._waiters  # type: ignore[attr-defined]
            return service.attempts["retried"] == 1 and not service._sending and bool(waiters)

        await until(waiting)
        service._wake.set()
        dispatcher.cancel()
        await asyncio.wait({dispatcher}, timeout=TIMEOUT)
        assert dispatcher.cancelled()


async def test_events_wait_in_memory_while_the_database_is_down(
    cluster: tuple[Cluster, str], caplog: pytest.LogCaptureFixture
) -> None:
    postgres, url = cluster
    async with receiving() as receiver, service_on(url, **FAST) as service:
        secret = new_secret()
        hook = await service.store.add(receiver.url, secret, EVENT_TYPES, 0, 20)
        service.start()
        service.meeting(joined(0))
        assert verify(await receiver.next(), secret)["data"]["member"] == "m0"

        async def delivered() -> list[Delivery]:
            return await service.store.deliveries(hook.id, "delivered")

        await until(delivered)
        postgres.stop()
        for i in range(1, 4):
            service.meeting(joined(i))  # returns at once: nothing waits for the database

        async def complained() -> bool:
            return "events wait" in caplog.text

        await until(complained)
        postgres.start()
        got = [verify(await receiver.next(20), secret)["data"]["member"] for _ in range(3)]
        assert got == ["m1", "m2", "m3"]


async def test_old_finished_deliveries_are_pruned(tmp_path: Path) -> None:
    day_ms = 86_400_000
    now = SystemClock().wall_ms()
    async with service_on(sqlite(tmp_path), retention_days=1, **FAST) as service:
        store = service.store
        down = f"http://127.0.0.1:{free_port()}/hook"
        hook = await store.add(down, new_secret(), EVENT_TYPES, 0, 20)

        def row(name: str, created_ms: int) -> Delivery:
            return Delivery(name, hook.id, "meeting_started", "{}", created_ms, "pending", 0, 0)

        old = now - 2 * day_ms
        rows = [
            row("msg_1delivered", old),
            row("msg_2failed", old),
            row("msg_3recent", now - day_ms // 2),
            row("msg_4pending", old),
        ]
        await store.enqueue(rows)
        await store.delivered("msg_1delivered", old, 200)
        await store.attempt_failed("msg_2failed", old, 500, "answered HTTP 500", None)
        await store.delivered("msg_3recent", now, 200)
        service.start()  # prunes at once

        async def pruned() -> list[str] | None:
            kept = sorted(d.id for d in await store.deliveries(hook.id))
            return kept if len(kept) == 2 else None

        assert await until(pruned) == ["msg_3recent", "msg_4pending"]


def test_cli_refuses_what_the_api_refuses(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from salon.cli import main

    monkeypatch.setenv("SALON_WEBHOOKS__MAX_ENDPOINTS", "1")
    where = ["--data-dir", str(tmp_path)]
    too_long = "https://example.org/" + "a" * 1981
    for url, why in (
        ("ftp://example.org/", "http:// or https://"),
        (too_long, "at most 2000 characters"),
    ):
        assert main(["webhook", "add", url, *where]) == 2
        assert why in capsys.readouterr().err
    assert main(["webhook", "add", too_long[:-1], *where]) == 0
    assert main(["webhook", "add", "https://example.org/2", *where]) == 2
    assert "at most 1 webhook endpoints" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["webhook", "add", "https://example.org/3", "--event", "nope", *where])


# ----------------------------------------------- what the review found (commit 81ad907)

UNSENDABLE = (
    "http://a\u0000/hook?token=SECRET1",  # httpx.InvalidURL
    "http://b\u007f/hook?token=SECRET2",  # httpx.InvalidURL
    "http://xn--/hook?token=SECRET3",  # idna.IDNAError
    "http://exa\u3002mple..com/hook?token=SECRET4",  # httpx.InvalidURL
)
"""URLs that the old check let through and that httpx refuses only when asked to send."""


async def test_urls_httpx_refuses_are_failed_attempts_and_starve_nobody(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Four endpoints whose URL httpx refuses (registered before the check refused them)
    take the four concurrent attempts first; each attempt is a failed one, backed off, and
    the delivery fails after ``max_attempts``: the healthy endpoint gets every event at once.
    (Before, each attempt held its slot for 5 s, was never counted and was made again at once:
    the healthy endpoint got none of 12 events in 60 s.)"""
    caplog.set_level(logging.INFO, "salon.server.webhooks")
    async with (
        receiving() as receiver,
        service_on(sqlite(tmp_path), concurrency=4, max_attempts=3, **FAST) as service,
    ):
        store = service.store
        bad = [await store.add(url, new_secret(), EVENT_TYPES, 0, 20) for url in UNSENDABLE]
        secret = new_secret()
        await store.add(receiver.url, secret, EVENT_TYPES, 1, 20)
        service.start()
        for i in range(12):
            service.meeting(joined(i))
        started = time.monotonic()
        got = [verify(await receiver.next(), secret)["data"]["member"] for _ in range(12)]
        assert got == [f"m{i}" for i in range(12)]
        assert time.monotonic() - started < 5, time.monotonic() - started

        for hook, kind in zip(
            bad, ("InvalidURL", "InvalidURL", "IDNAError", "InvalidURL"), strict=True
        ):

            async def first_failed(hook_id: str = hook.id) -> Delivery | None:
                oldest = (await store.deliveries(hook_id, limit=100))[-1]
                return oldest if oldest.status == "failed" else None

            first = await until(first_failed)
            assert (first.attempts, first.last_status_code) == (3, None)
            assert first.last_error == f"request failed ({kind})"
            assert first.next_attempt_ms > first.created_ms  # backed off, not at once

    records = [r for r in caplog.records if r.name == "salon.server.webhooks"]
    assert all(r.exc_info is None for r in records)  # no traceback (it names the URL)
    assert "SECRET" not in caplog.text and "xn--" not in caplog.text
    warned = [r.getMessage() for r in records if r.levelno == logging.WARNING]
    for hook in bad:
        assert any(f"to {hook.id} attempt 1: request failed" in m for m in warned), warned
    assert not any("unexpected trouble" in r.getMessage() for r in records)


async def test_the_api_and_cli_refuse_urls_httpx_would_refuse(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from salon.cli import main

    with server_with(tmp_path) as server:
        async with api(server) as http:
            for url in (*UNSENDABLE, "http://127.0.0.1:99999/hook"):
                refused = await http.post("/webhooks", json={"url": url})
                assert refused.status_code == 422, (url, refused.text)
                assert refused.json()["detail"]["code"] == "invalid_webhook"
                assert "SECRET" not in refused.text
            assert (await http.get("/webhooks")).json()["webhooks"] == []
        where = ["--data-dir", str(tmp_path)]
        for url in UNSENDABLE:
            assert await asyncio.to_thread(main, ["webhook", "add", url, *where]) == 2
            assert "valid host name" in capsys.readouterr().err


def pending_rows(hook_id: str, count: int, ids: DeliveryIds, created_ms: int) -> list[Delivery]:
    """``count`` pending deliveries of an endpoint, made at ``created_ms`` and after, each
    due at once."""
    return [
        Delivery(
            ids.next(created_ms + i),
            hook_id,
            "member_joined",
            '{"type":"member_joined"}',
            created_ms + i,
            "pending",
            0,
            created_ms + i,
        )
        for i in range(count)
    ]


async def test_a_backlog_does_not_add_to_the_dispatchers_work(tmp_path: Path) -> None:
    """The dispatcher reads each endpoint's oldest pending delivery on every wake-up: with an
    index look-up per endpoint, SQLite does the same work whether a dead endpoint has ten
    pending deliveries or twenty thousand (counted in virtual-machine steps, not in time).
    Before, a GROUP BY over every pending delivery made it grow with the backlog (64,000
    pending deliveries: 72 ms per wake-up)."""
    engine = await open_database(sqlite(tmp_path))
    try:
        store = SqlWebhookRepository(engine)
        dead = await store.add("http://127.0.0.1:9/dead", new_secret(), EVENT_TYPES, 0, 20)
        healthy = await store.add("http://127.0.0.1:9/ok", new_secret(), EVENT_TYPES, 1, 20)
        ids, now = DeliveryIds(), SystemClock().wall_ms()
        await store.enqueue(pending_rows(dead.id, 10, ids, now))
        await store.enqueue(pending_rows(healthy.id, 1, ids, now + 100))

        steps = 0

        def step() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        assert engine.pool.checkedin() == 1  # type: ignore[attr-defined]  # the one heads() gets
        async with engine.connect() as conn:
            raw = await conn.get_raw_connection()
            await raw.driver_connection.set_progress_handler(step, 10)

        async def work() -> int:
            nonlocal steps
            steps = 0
            heads = await store.heads()
            assert [h.delivery.webhook_id for h in heads] == [dead.id, healthy.id]
            return steps

        small = await work()
        for _ in range(10):
            await store.enqueue(pending_rows(dead.id, 2_000, ids, now + 200))
        big = await work()
        assert small > 0
        assert big <= small * 1.5 + 10, (small, big)
    finally:
        await engine.dispose()


async def test_a_dead_endpoints_backlog_does_not_delay_a_healthy_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A dead endpoint with 20,000 pending deliveries: a healthy endpoint still gets each
    event at once, in order, and the dead one's backlog is cut to ``max_pending``, its
    oldest failed unsent. (The attack: 64,000 pending deliveries behind dead endpoints, the
    healthy one fell far behind.)"""
    async with (
        receiving() as receiver,
        service_on(sqlite(tmp_path), max_attempts=100, **FAST) as service,
    ):
        store = service.store
        down = f"http://127.0.0.1:{free_port()}/hook"
        dead = await store.add(down, new_secret(), EVENT_TYPES, 0, 20)
        secret = new_secret()
        await store.add(receiver.url, secret, EVENT_TYPES, 1, 20)
        ids, now = DeliveryIds(), SystemClock().wall_ms() - 60_000
        for _ in range(10):
            await store.enqueue(pending_rows(dead.id, 2_000, ids, now))
        service.start()
        started = time.monotonic()
        for i in range(40):
            service.meeting(joined(i))
            got = verify(await receiver.next(), secret)["data"]["member"]
            assert got == f"m{i}"
        took = time.monotonic() - started
        assert took < 10, took  # about 0.5 s; the bound is generous

        # Cut when the first event was stored (then checked again every tenth of the cap).
        cap = service.settings.max_pending
        assert cap == 10_000  # the default
        assert service.discarded == 20_001 - cap
        assert await store.pending_count(dead.id) == cap + 39
        (newest_failed,) = await store.deliveries(dead.id, "failed", limit=1)
        assert newest_failed.last_error == f"not sent: over {cap} pending"
        assert f"endpoint {dead.id} has over {cap} pending" in caplog.text


async def test_a_backlog_stays_bounded_oldest_failed_first(
    tmp_path: Path,
    database_url: str | None,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = database_url or sqlite(tmp_path)
    async with service_on(url, max_attempts=1000, max_pending=20, **FAST) as service:
        store = service.store
        down = f"http://127.0.0.1:{free_port()}/hook"
        dead = await store.add(down, new_secret(), EVENT_TYPES, 0, 20)
        for i in range(100):
            service.meeting(joined(i))  # stored in one batch when the writer starts
        service.start()

        async def trimmed() -> list[Delivery] | None:
            rows = await store.deliveries(dead.id, "pending", limit=500)
            return rows if len(rows) == 20 else None

        kept = await until(trimmed)
        members = [json.loads(r.payload)["data"]["member"] for r in reversed(kept)]
        assert members == [f"m{i}" for i in range(80, 100)]  # the newest
        failed = await store.deliveries(dead.id, "failed", limit=500)
        assert len(failed) == 80 == service.discarded
        assert {r.last_error for r in failed} == {"not sent: over 20 pending"}
        assert f"endpoint {dead.id} has over 20 pending deliveries: its 80 oldest" in caplog.text

        # An attempt that ends after its delivery was failed unsent does not revive it.
        oldest = failed[-1]
        await store.attempt_failed(oldest.id, 1, None, "could not connect", 2)
        (again,) = [r for r in await store.deliveries(dead.id, limit=500) if r.id == oldest.id]
        assert (again.status, again.last_error) == ("failed", "not sent: over 20 pending")

        # Checked again every tenth of the cap stored (2 here): never far past the cap.
        for i in range(100, 137):
            service.meeting(joined(i))

            async def stored(member: str = f"m{i}") -> bool:
                rows = await store.deliveries(dead.id, limit=500)
                return any(json.loads(r.payload)["data"]["member"] == member for r in rows)

            await until(stored)  # one batch each: the cap is checked again as they come

        async def settled() -> list[Delivery] | None:
            # All stored, and the writer's check after the last batch made (it follows the
            # batch's transaction): at most a tenth of the cap past it.
            everything = await store.deliveries(dead.id, limit=500)
            pending = [r for r in everything if r.status == "pending"]
            return pending if len(everything) == 137 and len(pending) < 20 + 2 else None

        pending = await until(settled)
        assert len(pending) >= 20
        assert json.loads(pending[0].payload)["data"]["member"] == "m136"
        assert service.discarded == 137 - len(pending)


async def test_deliveries_pending_too_long_fail_unsent(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hour_ms = 3_600_000
    now = SystemClock().wall_ms()
    async with service_on(sqlite(tmp_path), max_attempts=1000, **FAST) as service:
        store = service.store
        down = f"http://127.0.0.1:{free_port()}/hook"
        first = await store.add(down, new_secret(), EVENT_TYPES, 0, 20)
        second = await store.add(down, new_secret(), EVENT_TYPES, 1, 20)
        ids = DeliveryIds()
        too_old = now - int(service.settings.max_pending_hours * hour_ms) - hour_ms
        await store.enqueue(
            pending_rows(first.id, 3, ids, too_old)
            + pending_rows(second.id, 2, ids, too_old + 10)
            + pending_rows(first.id, 2, ids, now - hour_ms)
        )
        service.start()  # checks at once

        async def expired() -> list[Delivery] | None:
            rows = [*await store.deliveries(first.id), *await store.deliveries(second.id)]
            return rows if sum(r.status == "failed" for r in rows) == 5 else None

        rows = await until(expired)
        hours = f"{service.settings.max_pending_hours:g}"
        for row in rows:
            if row.created_ms < now - hour_ms:
                assert (row.status, row.last_error) == (
                    "failed",
                    f"not sent: pending over {hours} h",
                )
            else:
                assert row.status == "pending"
        assert service.discarded == 5
        assert f"5 deliveries pending over {hours} h failed unsent" in caplog.text
