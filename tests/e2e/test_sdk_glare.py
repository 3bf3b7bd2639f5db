"""Glare between the Python SDK (aiortc) and Chromium: both renegotiate at once, 20 times.

One person in Chromium and two SDK clients share a room. The server makes one SDK client
polite toward the browser and the other impolite (the clients are chosen by member id,
docs/PROTOCOL.md §3.4), so both of the SDK's glare paths run: the impolite one ignores the
browser's offer, the polite one, which cannot roll back, answers it from a new
``RTCPeerConnection`` (salon/client/peer.py).

Each round the person starts or stops a screen share (the browser offers to both clients),
and each SDK client, the moment the browser's offer reaches it, makes an offer of its own
before handling the browser's: the two offers cross on the wire every time, so both sides
see glare every round (counted on the SDK side, seen in the browser's negotiation trail).
After each round every pair is ``stable``; after the last, both directions still carry
media: ``framesDecoded`` rises in Chromium for each client, frames received by each client
rise.

A second test adds a track on the SDK side after Chromium's offer set the pair's RTP header
extension ids: the SDK's offer keeps them (RFC 8285 §6), so Chromium takes it without a
rebuild and decodes the new track.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import av
import pytest
from aiortc import AudioStreamTrack, MediaStreamError, MediaStreamTrack, VideoStreamTrack

from salon.client import Client, Peer, ssl_context
from salon.protocol.messages import SignalRelay
from tests.e2e.conftest import Person, join_room, new_room, stats, wait_for_media
from tests.e2e.watch import poll

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

ROUNDS = 20
BROWSER = "carol"
ROUND_S = 15.0  # the longest one round may take to settle
TRIES = 40  # SDK clients greeted at most to fill both roles
ALPHABET = "".join(sorted("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
T = TypeVar("T")


class SdkLoop:
    """An asyncio loop in a thread of its own for the SDK, beside Playwright's sync API."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, job: Coroutine[Any, Any, T], timeout: float = 30) -> T:
        return asyncio.run_coroutine_threadsafe(job, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


@contextlib.contextmanager
def sdk_loop() -> Iterator[SdkLoop]:
    sdk = SdkLoop()
    try:
        yield sdk
    finally:
        sdk.stop()


class SmallVideo(VideoStreamTrack):
    """A 160x120 test picture: the machine has two cores, and each client encodes it for
    every peer."""

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        frame = av.VideoFrame(width=160, height=120, format="yuv420p")
        for plane, value in zip(frame.planes, (90, 240, 110), strict=True):
            plane.update(bytes([value]) * plane.buffer_size)
        frame.pts, frame.time_base = pts, time_base
        return frame


class Bot:
    """An SDK client in the room: sends a test pattern and a tone, counts video frames
    received from the browser, and offers when armed and the browser's offer arrives."""

    def __init__(self, server: str, name: str) -> None:
        self.client = Client(server, name, ssl=ssl_context(insecure=True))
        self.browser = ""
        self.frames = 0
        self.armed = False
        self.glares_made = 0
        self._readers: set[asyncio.Task[None]] = set()
        self._tracks: list[MediaStreamTrack] = [SmallVideo(), AudioStreamTrack()]
        for track in self._tracks:
            self.client.add_track(track)
        self.client.on_track(self._on_track)

    @property
    def peer(self) -> Peer:
        return self.client.peers[self.browser]

    def hook(self, browser: str) -> None:
        """Wrap the browser's peer: an armed bot offers first, then handles the offer."""
        self.browser = browser
        peer = self.peer
        handle = peer.receive

        def receive(relay: SignalRelay) -> None:
            description = relay.description
            if self.armed and description is not None and description.type == "offer":
                self.armed = False
                self.glares_made += 1
                peer.renegotiate()
            handle(relay)

        peer.receive = receive  # type: ignore[method-assign]

    def _on_track(self, peer: Peer, track: MediaStreamTrack) -> None:
        if peer.member.name == BROWSER and track.kind == "video":
            task = asyncio.ensure_future(self._count(track))
            self._readers.add(task)
            task.add_done_callback(self._readers.discard)

    async def _count(self, track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                self.frames += 1

    async def settled(self) -> bool:
        try:
            await self.peer.wait_stable(0.2)
        except TimeoutError:
            return False
        return not self.armed

    async def close(self) -> None:
        await self.client.close()
        for track in self._tracks:
            track.stop()
        for task in list(self._readers):
            task.cancel()


async def open_bots(server: str, room: str, browser: str) -> list[Bot]:
    """Two SDK clients in ``room``: the first polite toward the browser (its member id is
    greater, §3.4), the second not. Member ids are random: clients are greeted until both
    roles are filled; only those join."""
    roles: dict[bool, Bot] = {}
    try:
        for attempt in range(TRIES):
            bot = Bot(server, f"sdk-{attempt}")
            await bot.client.connect()
            polite = bot.client.id > browser
            if polite in roles:
                await bot.close()  # that role is taken: another member id
                continue
            roles[polite] = bot
            await bot.client.join(room)
            assert bot.client.members[browser].polite == polite
            if len(roles) == 2:
                for bot in roles.values():
                    bot.hook(browser)
                return [roles[True], roles[False]]
    except BaseException:
        for bot in roles.values():
            await bot.close()
        raise
    for bot in roles.values():
        await bot.close()
    raise AssertionError(f"no member ids on both sides of the browser's in {TRIES} tries")


def middling(member_id: str) -> bool:
    """Whether about a quarter or more of random member ids fall on each side of this one
    (ids are base64url, compared by code point): then :func:`open_bots` fills both roles
    within its tries but for a chance below 1e-4."""
    return 16 <= ALPHABET.index(member_id[0]) < 48


def join_as_browser(page: Any, room: str, fits: Callable[[str], bool] = middling) -> str:
    """The person joins ``room`` (again, until its member id ``fits``: half of random ids are
    :func:`middling`, so 16 joins fail to find one with a chance of 1.5e-5)."""
    for _ in range(16):
        join_room(page, room, BROWSER)
        member_id: str = page.evaluate("window.__salon.snapshot().selfId")
        if fits(member_id):
            return member_id
    raise AssertionError("the browser's member id did not fit 16 times in a row")


def browser_side(page: Any, names: list[str]) -> dict[str, dict[str, Any]]:
    peers = stats(page)
    return {name: peers.get(name, {}) for name in names}


def explain(page: Any, bots: list[Bot]) -> None:
    """Print each side's negotiation steps (shown by pytest when the test fails)."""
    for bot in bots:
        print(f"[{bot.client.name}] frames {bot.frames}, trail: {list(bot.peer.trail)}")
    for name, side in browser_side(page, [bot.client.name for bot in bots]).items():
        print(f"[browser toward {name}] {side.get('signaling')}: {side.get('trail')}")


def test_sdk_and_chromium_renegotiate_at_once_20_times(person: Person, server: str) -> None:
    started = time.monotonic()
    page = person()
    room = new_room(page)
    browser = join_as_browser(page, room)
    with sdk_loop() as sdk:
        bots = sdk.run(open_bots(server, room, browser))
        names = [bot.client.name for bot in bots]
        try:
            wait_for_media(page, names)
            poll(page, lambda: all(bot.frames > 10 for bot in bots), "the SDK to receive video", 20)
            for round_ in range(ROUNDS):
                label = "Share screen" if round_ % 2 == 0 else "Stop sharing screen"
                for bot in bots:
                    bot.armed = True
                page.locator(f'button[aria-label="{label}"]').click()

                def settled() -> bool:
                    sides = browser_side(page, names)
                    if any(s.get("signaling") != "stable" for s in sides.values()):
                        return False
                    return all(sdk.run(bot.settled()) for bot in bots)

                try:
                    poll(page, settled, f"round {round_}: every pair stable", ROUND_S)
                except AssertionError:
                    explain(page, bots)
                    raise
            took = time.monotonic() - started

            # Glare every round, on both sides: the SDK offered while the browser's offer was
            # out, and met it with its own out.
            for bot in bots:
                assert bot.glares_made == ROUNDS, (bot.client.name, bot.glares_made)
                assert bot.peer.collisions >= ROUNDS, (bot.client.name, bot.peer.collisions)
            polite, impolite = bots
            assert polite.peer.replaced >= ROUNDS  # answered from a new connection each time
            assert impolite.peer.replaced == 0  # ignored the browser's offer, as the rule says
            trails = {n: s.get("trail", []) for n, s in browser_side(page, names).items()}
            for name, trail in trails.items():
                assert any("(collision)" in step for step in trail), (name, trail)

            # Both directions still carry media.
            wait_for_media(page, names, timeout=20)
            before = [bot.frames for bot in bots]
            poll(
                page,
                lambda: all(b.frames > n + 10 for b, n in zip(bots, before, strict=True)),
                "the SDK's received frames to rise",
                10,
            )
            for bot in bots:
                assert bot.peer.pc.connectionState == "connected"
            print(
                f"{ROUNDS} rounds of glare in {took:.1f} s (from the start);"
                f" polite SDK replaced its connection {polite.peer.replaced} times"
            )
        finally:
            for bot in bots:
                sdk.run(bot.close())


def below_the_top(member_id: str) -> bool:
    """Whether a quarter or more of random member ids are greater than this one: then
    :func:`open_polite` finds one within its tries but for a chance below 1e-4."""
    return ALPHABET.index(member_id[0]) < 48


async def open_polite(server: str, room: str, browser: str) -> Client:
    """An SDK client in ``room`` polite toward the browser (a greater member id, §3.4), so
    the browser makes the pair's first offer; it sends nothing yet."""
    for attempt in range(TRIES):
        client = Client(server, f"late-{attempt}", ssl=ssl_context(insecure=True))
        await client.connect()
        if client.id > browser:
            await client.join(room)
            return client
        await client.close()
    raise AssertionError(f"no member id above the browser's in {TRIES} tries")


async def answered(client: Client, browser: str) -> Peer:
    """The peer toward the browser once the browser's first offer is answered and the
    connection is up."""
    async with asyncio.timeout(20):
        while True:
            peer = client.peers.get(browser)
            if peer is not None and peer.pc.connectionState == "connected":
                await peer.wait_stable(10)
                return peer
            await asyncio.sleep(0.05)


def test_a_track_added_after_the_browsers_first_offer_needs_no_reset(
    person: Person, server: str
) -> None:
    """RFC 8285 §6: an extension's id is not reassigned within a session. Chromium's offer
    set the pair's ``a=extmap`` ids; the SDK's later offer (a track added) must keep them,
    or Chromium refuses it and the pair is rebuilt."""
    page = person()
    room = new_room(page)
    browser = join_as_browser(page, room, below_the_top)
    with sdk_loop() as sdk:
        client = sdk.run(open_polite(server, room, browser))
        video = SmallVideo()
        try:
            peer = sdk.run(answered(client, browser))
            assert peer.polite and peer.pc.remoteDescription is not None
            sdk.loop.call_soon_threadsafe(client.add_track, video)
            wait_for_media(page, [client.name], audio=False, timeout=20)
            side = browser_side(page, [client.name])[client.name]
            trail = list(peer.trail)
            assert side["rebuilds"] == 0, side["trail"]
            assert side["signaling"] == "stable", side["trail"]
            assert peer.replaced == 0, trail
            assert not any("reset" in step or "rejected" in step for step in trail), trail
        finally:
            sdk.run(client.close())
            video.stop()
