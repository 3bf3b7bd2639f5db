"""A foreign client's bad and out-of-order signals, against real Chromium (RELIABILITY rows 8
and 43, the client side).

One person is in the room in Chromium; the other member is a raw protocol client in Python
(docs/PROTOCOL.md over a real WebSocket, no WebRTC stack: it writes its SDP by hand, so it
cannot carry media and the proof is about signaling state). Which side is polite follows
from the member ids (PROTOCOL §3.4), so the foreign client reconnects until it gets the
relation the test needs.

What Chromium's client must do:

- An offer that does not parse: send `rejected {type: "offer", message}`, keep its
  RTCPeerConnection `stable` (no half-applied state), show "Restoring media…", and on the
  foreign side's `reset` replace the connection and negotiate again.
- Candidates that arrive before any description are held and applied with it; one of another
  ICE ufrag is dropped, never refused.
- A duplicate answer, and an answer of a connection a reset has replaced, change nothing.
- Answers that keep failing: rebuild with `reset`, at most three times a minute, then show
  "Media connection lost": never an endless "Connecting…".

The page's RTCPeerConnections are reached through a wrapper installed before the client's
code runs (``faults.PC_TRACKER``); the client itself is unchanged. A last test has two
Chromium people: one page's renegotiation offer is corrupted on its way out (under the
client, in ``WebSocket.prototype.send``) and the pair must recover with real media.
"""

from __future__ import annotations

import json
import queue
import re
import secrets
import ssl
import string
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import Person, join_room, new_room, stats, tile, wait_for_media
from tests.e2e.faults import PC_TRACKER, now_ms
from tests.e2e.watch import ConsoleErrors, FrameLog, poll, snapshot_ids
from tests.loopthread import LoopThread

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(300)]

WAIT_S = 15.0  # the longest any one step may take on a loaded machine

T = TypeVar("T")

PCS = """() => window.__pcs.map((pc) => ({
  signaling: pc.signalingState,
  connection: pc.connectionState,
  remote: pc.remoteDescription && pc.remoteDescription.sdp,
  local: pc.localDescription && pc.localDescription.type,
}))"""


def pcs(page: Any) -> list[dict[str, Any]]:
    """Every RTCPeerConnection the page made, oldest first: states and remote SDP."""
    found: list[dict[str, Any]] = page.evaluate(PCS)
    return found


# --------------------------------------------------------------------------------------------
# The foreign client


class Foreign:
    """A raw protocol client over a real WebSocket, driven from the test's thread. The
    connection lives in an asyncio loop of its own thread, which reads every frame, answers
    the server's ``ping`` and queues the rest (tests/loopthread.py says why not websockets'
    threaded client)."""

    def __init__(self, base_url: str) -> None:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        self._loop = LoopThread()
        url = base_url.replace("https://", "wss://") + "/ws"
        try:
            self.ws: ClientConnection = self._run(connect(url, ssl=context, open_timeout=10))
        except BaseException:
            self._loop.stop()
            raise
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.seen: list[dict[str, Any]] = []  # everything received but pings, in order
        self.id = self.name = ""
        self._reader = self._loop.submit(self._read())

    def _run(self, job: Awaitable[T]) -> T:
        return self._loop.run(job, WAIT_S)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                message = json.loads(raw)
                if message.get("type") == "ping":
                    await self.ws.send(json.dumps({"type": "pong"}))
                elif message.get("type") != "resume_token":
                    self.seen.append(message)
                    self.inbox.put(message)
        except ConnectionClosed:
            pass

    def send(self, **message: Any) -> None:
        self._run(self.ws.send(json.dumps(message)))

    def expect(self, what: Callable[[dict[str, Any]], bool], label: str) -> dict[str, Any]:
        """The next queued message for which ``what`` holds (others are dropped)."""
        deadline = time.monotonic() + WAIT_S
        while True:
            left = deadline - time.monotonic()
            try:
                message = self.inbox.get(timeout=max(0.01, left))
            except queue.Empty:
                raise AssertionError(f"the foreign client got no {label}") from None
            if what(message):
                return message

    def signal(self, to: str, **payload: Any) -> None:
        self.send(type="signal", to=to, **payload)

    def close(self) -> None:
        """Close (again: nothing)."""
        if self._loop.stopped:
            return
        try:
            self._run(self.ws.close())
            self._reader.result(5)
        finally:
            self._loop.stop()


@pytest.fixture
def foreign(server: str) -> Iterator[Callable[[], Foreign]]:
    """``foreign()`` connects a new raw client; all are closed after the test."""
    made: list[Foreign] = []

    def make() -> Foreign:
        client = Foreign(server)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


# Member ids are 12 random base64url characters (9 bytes); ordered by code point.
ID_ALPHABET = "".join(sorted(string.ascii_letters + string.digits + "-_"))


def share_above(member_id: str) -> float:
    """The share of random member ids that are greater than ``member_id`` (0..1)."""
    below = sum(ID_ALPHABET.index(c) / 64.0 ** (i + 1) for i, c in enumerate(member_id))
    return 1.0 - below


def greeted_foreign(make: Callable[[], Foreign], browser_id: str, *, polite: bool) -> Foreign:
    """A greeted raw client that is (``polite``) or is not the polite side toward the browser:
    the greater member id is polite (PROTOCOL §3.4), and ids are random per connection.
    ``browser_in_room(foreign_polite=...)`` made at least a quarter of all ids fit."""
    for _ in range(40):
        client = make()
        client.send(type="hello", versions=[1], name=f"h5-{secrets.token_hex(3)}")
        welcome = client.expect(lambda m: m["type"] == "welcome", "welcome")
        client.id, client.name = welcome["id"], welcome["name"]
        if (client.id > browser_id) == polite:
            return client
        client.close()
    raise AssertionError("no member id on the wanted side in 40 connections")


def signal_from(browser_id: str, kind: str) -> Callable[[dict[str, Any]], bool]:
    """Matches a `signal` from the browser carrying ``kind``: "offer", "answer", "candidate",
    "rejected" or "reset"."""

    def match(message: dict[str, Any]) -> bool:
        if message.get("type") != "signal" or message.get("from") != browser_id:
            return False
        if kind in ("offer", "answer"):
            return (message.get("description") or {}).get("type") == kind
        return message.get(kind) is not None

    return match


# --------------------------------------------------------------------------------------------
# Hand-written SDP (RFC 8866 syntax, JSEP RFC 8829 rules: BUNDLE, rtcp-mux, DTLS fingerprint)


def _fingerprint() -> str:
    return ":".join(f"{b:02X}" for b in secrets.token_bytes(32))


def _codecs(kind: str) -> list[str]:
    return ["111 opus/48000/2"] if kind == "audio" else ["96 VP8/90000"]


def offer_sdp(ufrag: str, session: str, kinds: tuple[str, ...] = ("audio", "video")) -> str:
    """A well-formed offer with one sendrecv m-line per kind, ICE ufrag ``ufrag``."""
    mids = [str(i) for i in range(len(kinds))]
    lines = [
        "v=0",
        f"o=- {session} 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        f"a=group:BUNDLE {' '.join(mids)}",
        "a=msid-semantic: WMS foreign",
    ]
    fingerprint = _fingerprint()
    pwd = secrets.token_hex(12)
    for mid, kind in zip(mids, kinds, strict=True):
        codecs = _codecs(kind)
        lines += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {' '.join(c.split()[0] for c in codecs)}",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:actpass",
            f"a=mid:{mid}",
            f"a=msid:foreign {kind}-track",
            "a=sendrecv",
            "a=rtcp-mux",
            *(f"a=rtpmap:{c}" for c in codecs),
        ]
    return "\r\n".join(lines) + "\r\n"


def answer_sdp(offer: str, ufrag: str, session: str) -> str:
    """An answer to ``offer`` accepting each m-line with its first opus / VP8 payload type,
    receiving only (so it needs no track of its own)."""
    sections = re.split(r"\r\n(?=m=)", offer.strip())
    mids = []
    body: list[str] = []
    fingerprint = _fingerprint()
    pwd = secrets.token_hex(12)
    for section in sections[1:]:
        kind = section.split(" ", 1)[0][2:]
        mid = re.search(r"a=mid:(\S+)", section)
        assert mid is not None, section
        mids.append(mid.group(1))
        codec = "opus/48000/2" if kind == "audio" else "VP8/90000"
        pt = re.search(rf"a=rtpmap:(\d+) {re.escape(codec)}", section)
        if pt is None:  # an m-line we cannot take (RFC 8829 5.3.1: port 0 rejects it)
            body += [f"m={kind} 0 UDP/TLS/RTP/SAVPF 0", "c=IN IP4 0.0.0.0", f"a=mid:{mid[1]}"]
            continue
        sending = re.search(r"a=(sendrecv|sendonly)", section) is not None
        body += [
            f"m={kind} 9 UDP/TLS/RTP/SAVPF {pt.group(1)}",
            "c=IN IP4 0.0.0.0",
            "a=rtcp:9 IN IP4 0.0.0.0",
            f"a=ice-ufrag:{ufrag}",
            f"a=ice-pwd:{pwd}",
            f"a=fingerprint:sha-256 {fingerprint}",
            "a=setup:active",
            f"a=mid:{mid.group(1)}",
            "a=recvonly" if sending else "a=inactive",
            "a=rtcp-mux",
            f"a=rtpmap:{pt.group(1)} {codec}",
        ]
    head = ["v=0", f"o=- {session} 2 IN IP4 127.0.0.1", "s=-", "t=0 0"]
    head.append(f"a=group:BUNDLE {' '.join(mids)}")
    return "\r\n".join(head + body) + "\r\n"


def corrupt(sdp: str) -> str:
    """``sdp`` cut off in its second m-line, which then says nonsense (not parseable SDP)."""
    cut = sdp.index("m=video")
    return sdp[:cut] + "m=video nine UDP/TLS/RTP/SAVPF\r\na=mid\r\n"


def candidate(ufrag: str, port: int) -> dict[str, Any]:
    """A host candidate (RFC 8839 5.1) on 198.18.0.1 (RFC 2544 benchmarking: no one there)."""
    return {
        "candidate": f"candidate:{port} 1 udp 2122260223 198.18.0.1 {port} typ host generation 0",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
        "usernameFragment": ufrag,
    }


def session_id() -> str:
    return str(secrets.randbelow(2**62) + 1)


# --------------------------------------------------------------------------------------------
# The browser side


def rtc_warnings(page: Any) -> list[str]:
    """What the client's rtc code logged (``console.warn("salon rtc:", …)``) since the page
    loaded: every error it passed to ``onError``."""
    found: list[str] = page.evaluate("window.__rtcWarnings || []")
    return found


WARN_TRACKER = """
(() => {
  window.__rtcWarnings = [];
  const warn = console.warn.bind(console);
  console.warn = (...args) => {
    if (args[0] === "salon rtc:") window.__rtcWarnings.push(args.map(String).join(" "));
    warn(...args);
  };
})();
"""


def browser_in_room(
    person: Person, name: str, *, foreign_polite: bool
) -> tuple[Any, str, str, FrameLog, ConsoleErrors]:
    """A Chromium person alone in a new room: page, room id, own member id, frames, errors.
    Its member id leaves at least a quarter of all ids on the side a foreign client must be
    (``foreign_polite``: greater), so that ``greeted_foreign`` finds one in 40 tries (else
    it would fail 1 time in 41); a person with an id too near an end is closed and another
    opened (a quarter of the time; the 20th is kept whatever its id)."""
    for attempt in range(20):
        page, room, own, log, errors = alone_in_room(person, name)
        above = share_above(own)
        if (above if foreign_polite else 1.0 - above) >= 0.25 or attempt == 19:
            break
        page.context.close()
    return page, room, own, log, errors


def alone_in_room(person: Person, name: str) -> tuple[Any, str, str, FrameLog, ConsoleErrors]:
    page = person()
    page.context.add_init_script(PC_TRACKER)
    page.context.add_init_script(WARN_TRACKER)
    log, errors = FrameLog(page), ConsoleErrors(page)
    room = new_room(page)
    join_room(page, room, name)
    own = poll(page, lambda: snapshot_ids(page).get("self"), "the own member id", WAIT_S)
    # Alone in the room the mesh has no connection yet; forget the pre-join probe's.
    page.evaluate("window.__pcs.length = 0")
    return page, room, str(own), log, errors


def status(page: Any, name: str) -> str:
    remote = tile(page, name)
    return str(remote.get_attribute("data-status") or "") if remote.count() == 1 else "<no tile>"


def trail(page: Any, name: str) -> list[str]:
    found: list[str] = stats(page).get(name, {}).get("trail", [])
    return found


def test_a_foreign_offer_that_does_not_parse_is_rejected_and_the_pair_starts_over(
    person: Person, foreign: Callable[[], Foreign]
) -> None:
    page, room, own, _log, errors = browser_in_room(person, "ann", foreign_polite=False)
    since = now_ms()
    # The foreign side is impolite, so it offers; Chromium's client is the polite side.
    zed = greeted_foreign(foreign, own, polite=False)
    zed.send(type="join", room=room)
    joined = zed.expect(lambda m: m["type"] == "joined", "joined")
    [ann] = joined["members"]
    assert ann["id"] == own and ann["polite"] is False, ann
    name = zed.name
    poll(page, lambda: status(page, name) == "Connecting…", "zed's tile", WAIT_S)

    # 1. An offer that does not parse: `rejected` on the wire, the connection untouched.
    bad = corrupt(offer_sdp("zedA", session_id()))
    zed.signal(own, description={"type": "offer", "sdp": bad})
    rejected = zed.expect(signal_from(own, "rejected"), "rejected")["rejected"]
    print(f"ann said: rejected {rejected}")
    assert rejected["type"] == "offer"
    assert 0 < len(rejected["message"]) <= 256
    assert "SessionDescription" in rejected["message"] or "SDP" in rejected["message"]
    [first] = pcs(page)
    assert first["signaling"] == "stable" and first["remote"] is None, first
    # The polite side waits for the impolite side's reset, and says so (not "Connecting…").
    poll(page, lambda: status(page, name) == "Restoring media…", "Restoring media…", WAIT_S)
    assert "offer did not apply [stable]" in trail(page, name)

    # 2. The reset: a new RTCPeerConnection, the old one closed.
    zed.signal(own, reset={"reason": "rejected"})
    poll(page, lambda: len(pcs(page)) == 2, "a new RTCPeerConnection after the reset", WAIT_S)
    old, new = pcs(page)
    assert old["signaling"] == "closed" and new["signaling"] == "stable", (old, new)

    # 3. Candidates before the description: held, then applied with the offer; the one of
    # another ufrag dropped, never refused.
    ufrag = "zedB"
    for port in (50001, 50002):
        zed.signal(own, candidate=candidate(ufrag, port))
    zed.signal(own, candidate=candidate("zedX", 50003))
    zed.signal(own, description={"type": "offer", "sdp": offer_sdp(ufrag, session_id())})
    answer = zed.expect(signal_from(own, "answer"), "an answer to the good offer")
    assert "a=ice-ufrag:" in answer["description"]["sdp"]
    [_old, new] = poll(
        page,
        lambda: (found := pcs(page))[-1]["signaling"] == "stable" and found[-1]["remote"] and found,
        "the new connection stable with the offer applied",
        WAIT_S,
    )
    remote = new["remote"]
    assert "198.18.0.1 50001" in remote and "198.18.0.1 50002" in remote, remote
    assert "50003" not in remote, remote
    steps = trail(page, name)
    print(f"ann's trail toward {name}: {steps}")
    assert any(s.startswith("held candidate of another description dropped") for s in steps)
    assert not any("candidate refused" in s for s in steps), steps
    assert not any("addIceCandidate" in w for w in rtc_warnings(page)), rtc_warnings(page)

    # Nothing of this reached the console as an error, and the polite side never reset.
    assert errors.texts(since) == [], errors.texts(since)
    assert not any(signal_from(own, "reset")(m) for m in zed.seen)


def test_early_candidates_a_duplicate_and_a_stale_answer_and_answers_that_keep_failing(
    person: Person, foreign: Callable[[], Foreign]
) -> None:
    page, room, own, log, errors = browser_in_room(person, "bea", foreign_polite=True)
    since = now_ms()
    # The foreign side is polite: Chromium's client offers, the foreign client answers.
    zed = greeted_foreign(foreign, own, polite=True)
    zed.send(type="join", room=room)
    [bea] = zed.expect(lambda m: m["type"] == "joined", "joined")["members"]
    assert bea["id"] == own and bea["polite"] is True, bea
    name = zed.name
    offer = zed.expect(signal_from(own, "offer"), "bea's first offer")["description"]["sdp"]

    # 1. Candidates before the answer: held while there is no remote description.
    ufrag = "zedC"
    zed.signal(own, candidate=candidate(ufrag, 50011))
    zed.signal(own, candidate=candidate("zedY", 50012))
    first_answer = answer_sdp(offer, ufrag, session_id())
    zed.signal(own, description={"type": "answer", "sdp": first_answer})
    # The held candidates are added after the answer applies: wait for the one that may apply.
    [first] = poll(
        page,
        lambda: (
            (found := pcs(page))[-1]["signaling"] == "stable"
            and "198.18.0.1 50011" in (found[-1]["remote"] or "")
            and found
        ),
        "bea's connection stable with the answer and its held candidate applied",
        WAIT_S,
    )
    assert "50012" not in first["remote"], first  # the other ufrag's: dropped

    # 2. The same answer again: dropped; the connection is not touched, nothing is sent.
    zed.signal(own, description={"type": "answer", "sdp": first_answer})
    poll(
        page,
        lambda: any("answer without an offer of ours dropped" in s for s in trail(page, name)),
        "bea to drop the duplicate answer",
        WAIT_S,
    )
    [same] = pcs(page)
    assert same["signaling"] == "stable" and same["remote"] == first["remote"], same

    # 3. Bea's offer is refused: she rebuilds and says `reset`, and offers on a new connection.
    zed.signal(own, rejected={"type": "offer", "message": "h5: refused on purpose"})
    reset = zed.expect(signal_from(own, "reset"), "a reset from bea")["reset"]
    assert reset == {"reason": "rejected"}, reset
    zed.expect(signal_from(own, "offer"), "bea's offer on the new connection")

    # 4. The old answer once more, now stale (its connection was replaced): dropped unapplied.
    zed.signal(own, description={"type": "answer", "sdp": first_answer})
    poll(
        page,
        lambda: any(s.startswith("stale description dropped") for s in trail(page, name)),
        "bea to drop the stale answer",
        WAIT_S,
    )
    old, new = pcs(page)
    assert old["signaling"] == "closed", old
    assert new["signaling"] == "have-local-offer" and new["remote"] is None, new

    # 5. Answers that do not apply, again and again: a rebuild each (`reset`), at most three a
    # minute; the fourth failure is shown as "Media connection lost", not "Connecting…".
    assert status(page, name) == "Restoring media…", status(page, name)
    resets = [reset]
    for attempt in range(3):
        offers = [m for m in log.sent("signal") if (m.get("description") or {}).get("type")]
        bad = corrupt(answer_sdp(offers[-1]["description"]["sdp"], "zedD", session_id()))
        zed.signal(own, description={"type": "answer", "sdp": bad})
        if attempt < 2:
            resets.append(zed.expect(signal_from(own, "reset"), "a reset from bea")["reset"])
            zed.expect(signal_from(own, "offer"), "bea's next offer")
    poll(page, lambda: status(page, name) == "Media connection lost", "the failure", WAIT_S)
    problem = tile(page, name).get_by_test_id("tile-status")
    assert "problem" in (problem.get_attribute("class") or ""), problem.get_attribute("class")
    print(f"bea sent resets {resets}; her trail: {trail(page, name)}")
    assert resets == [{"reason": "rejected"}] + [{"reason": "description_failed"}] * 2, resets
    assert len(pcs(page)) == 4  # the first connection and three rebuilds, no more
    assert stats(page)[name]["rebuilds"] == 3
    # The failed pair stays as it is: no further reset or offer goes out.
    page.wait_for_timeout(1000)  # no event marks "nothing more was sent"; a short look
    assert sum(signal_from(own, "reset")(m) for m in zed.seen) == len(resets)
    assert errors.texts(since) == [], errors.texts(since)


# Corrupts the SDP of the next offer this page sends once window.__corruptNextOffer is set
# (the client's own code is untouched: this sits in WebSocket.prototype.send under it).
OFFER_CORRUPTER = """
(() => {
  const send = WebSocket.prototype.send;
  window.__corruptNextOffer = false;
  WebSocket.prototype.send = function (data) {
    if (window.__corruptNextOffer && typeof data === "string") {
      const message = JSON.parse(data);
      const description = message.type === "signal" ? message.description : null;
      if (description && description.type === "offer") {
        window.__corruptNextOffer = false;
        const sdp = message.description.sdp;
        message.description.sdp = sdp.slice(0, sdp.indexOf("m=video")) + "m=video nine\\r\\n";
        data = JSON.stringify(message);
      }
    }
    return send.call(this, data);
  };
})();
"""


def test_between_two_browsers_a_corrupted_renegotiation_offer_is_rejected_and_the_pair_recovers(
    person: Person,
) -> None:
    names = ["cal", "dee"]
    pages = [person(), person()]
    for page in pages:
        page.context.add_init_script(OFFER_CORRUPTER)
    logs = [FrameLog(p) for p in pages]
    room = new_room(pages[0])
    for page, name in zip(pages, names, strict=True):
        join_room(page, room, name)
    wait_for_media(pages[0], [names[1]])
    wait_for_media(pages[1], [names[0]])
    ids = [snapshot_ids(p)["self"] for p in pages]
    # The smaller member id is the impolite side (PROTOCOL §3.4): its offer gets corrupted.
    offerer = 0 if ids[0] < ids[1] else 1
    answerer = 1 - offerer
    since = now_ms()
    pages[offerer].evaluate("window.__corruptNextOffer = true")
    pages[offerer].get_by_role("button", name="Share screen").click()

    # The answerer says `rejected`; the offerer rebuilds and says `reset`; a new connection is
    # negotiated with the screen share in it; camera, microphone and screen all flow.
    rejected = poll(
        pages[answerer],
        lambda: [m["rejected"] for m in logs[answerer].sent("signal", since) if m.get("rejected")],
        "the answerer to reject the corrupted offer",
        WAIT_S,
    )
    resets = poll(
        pages[offerer],
        lambda: [m["reset"] for m in logs[offerer].sent("signal", since) if m.get("reset")],
        "the offerer to reset the pair",
        WAIT_S,
    )
    print(f"rejected: {rejected}; resets: {resets}")
    assert [r["type"] for r in rejected] == ["offer"]
    assert "Failed to parse SessionDescription" in rejected[0]["message"]
    assert resets == [{"reason": "rejected"}]
    poll(
        pages[answerer],
        lambda: stats(pages[answerer]).get(names[offerer], {}).get("screenFramesDecoded", 0) > 0,
        "the screen share to arrive over the rebuilt connection",
        30,
    )
    for me, other in ((offerer, answerer), (answerer, offerer)):
        wait_for_media(pages[me], [names[other]])
        peer = stats(pages[me])[names[other]]
        assert peer["rebuilds"] == 1 and peer["signaling"] == "stable", peer
        assert status(pages[me], names[other]) == "", status(pages[me], names[other])
