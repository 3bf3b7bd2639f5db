"""Call set-up time in real Chromium against a real Salon server (a benchmark, not a test).

* Two people, 20 trials: from the second person pressing Join to the first decoded remote
  video frame on *both* sides (``requestVideoFrameCallback``). Prints p50 and p95.
* Bigger rooms: the time for a 4th and a 6th person, from pressing Join, until every pair
  involving them has shown a first remote frame on both ends ("fully connected"); the 4th
  ``--fourth`` times (default once), the 6th once.

Each person waits on the pre-join page until it has greeted the server (the
``salon:prejoin-greeted`` mark), as a person looking at their preview for a moment would;
Join then sends only ``join``. ``--compare`` interleaves those trials with ones that press Join
as soon as the name is typed, before the page greets early (its greeting waits 500 ms for the
name to settle), so that Join opens the socket and says ``hello`` itself, as before issue #17.

``--floor`` interleaves trials of the in-page floor (two RTCPeerConnections in one page, no
server) and prints each mode's ratio to it; ``--against DIR`` interleaves trials against another
server serving the client built in DIR (an A/B of client changes); ``--rtt MS`` puts the
server MS ms (round trip) away from the browsers, in a network namespace (root). Each mode
also prints the median of the client's User Timing marks, the steps of setting the call up.

Run after building the client (``make web``)::

    .venv/bin/python bench/call_setup.py [--trials 20] [--compare] [--pairs-only] [--floor]
        [--against DIR ...] [--rtt MS] [--fourth TRIALS] [--verbose]

``--trials 0`` skips the two-person trials. Targets (issue #17): p50 <= 1.3x the floor's on
loopback; with ``--rtt``, at most the floor plus two round trips; the 4th person fully
connected within 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the repository's `tests` importable

from tests.e2e.faults import ImpairedLink  # noqa: E402
from tests.support import CHROMIUM, CHROMIUM_ARGS_20_FPS, stop_process  # noqa: E402

SALON = REPO / ".venv" / "bin" / "salon"

# Records, per remote member, the wall time (ms) of the first frame shown from them.
FIRST_FRAMES = """
(() => {
  window.__firstFrame = {};
  const watch = (video) => {
    if (video.__watched || !video.requestVideoFrameCallback) return;
    video.__watched = true;
    const tile = video.closest('[data-testid="tile"]');
    if (!tile || tile.dataset.self === "true" || video.dataset.kind !== "camera") return;
    video.requestVideoFrameCallback(() => {
      const name = tile.dataset.member;
      if (!(name in window.__firstFrame)) {
        window.__firstFrame[name] = performance.timeOrigin + performance.now();
      }
    });
  };
  // Main-thread tasks over 50 ms: [start, duration] in wall-clock ms.
  window.__longTasks = [];
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      window.__longTasks.push([performance.timeOrigin + e.startTime, e.duration]);
    }
  }).observe({ type: "longtask" });
  new MutationObserver(() => {
    document.querySelectorAll("video").forEach(watch);
    if (!window.__inRoom && document.querySelector('[data-testid="room"]')) {
      window.__inRoom = performance.timeOrigin + performance.now();
    }
  })
    .observe(document, { childList: true, subtree: true });
})();
"""

# POST /api/v1/rooms as the client does: the CSRF token echoed in X-CSRF-Token (the browser
# adds the page's Origin itself).
CREATE_ROOM = """
fetch('/api/v1/csrf').then(r => r.json())
  .then(t => fetch('/api/v1/rooms', {method: 'POST', headers: {'X-CSRF-Token': t.token}}))
  .then(r => r.json())
"""

CHECKED = (
    '[data-testid="connection-check"][data-step="done"],'
    ' [data-testid="connection-check"][data-step="unavailable"]'
)

GREETED = "() => performance.getEntriesByName('salon:prejoin-greeted').length > 0"

# The floor: two RTCPeerConnections in one page, no server. Both send the fake camera at
# 640x480 and the microphone, as two people in Salon do; one offer, one answer, candidates
# handed over as they come. Like a Salon trial, the camera is running before the clock starts.
# Returns ms from the start to the first decoded remote frame on both connections.
FLOOR = """
async () => {
  const now = () => performance.timeOrigin + performance.now();
  const media = {audio: true, video: {width: 640, height: 480}};
  const stream = await navigator.mediaDevices.getUserMedia(media);
  const shown = (track) => {
    const video = document.createElement("video");
    video.muted = true;
    video.srcObject = new MediaStream([track]);
    document.body.append(video);
    video.play();
    return new Promise((resolve) => video.requestVideoFrameCallback(() => resolve(now())));
  };
  await shown(stream.getVideoTracks()[0]);  // the preview is live
  const start = now();
  const a = new RTCPeerConnection(), b = new RTCPeerConnection();
  const firsts = [a, b].map((pc) => new Promise((resolve) => {
    pc.ontrack = (e) => { if (e.track.kind === "video") shown(e.track).then(resolve); };
  }));
  const pending = new Map([[a, []], [b, []]]);
  const hand = (from, to) => {
    from.onicecandidate = (e) => {
      if (!e.candidate) return;
      if (to.remoteDescription) to.addIceCandidate(e.candidate);
      else pending.get(to).push(e.candidate);
    };
  };
  const described = async (pc, description) => {
    await pc.setRemoteDescription(description);
    for (const c of pending.get(pc).splice(0)) await pc.addIceCandidate(c);
  };
  hand(a, b);
  hand(b, a);
  for (const track of stream.getTracks()) {
    a.addTrack(track, stream);
    b.addTrack(track.clone(), stream);
  }
  await a.setLocalDescription();
  await described(b, a.localDescription);
  await b.setLocalDescription();
  await described(a, b.localDescription);
  const done = Math.max(...(await Promise.all(firsts)));
  a.close();
  b.close();
  stream.getTracks().forEach((t) => t.stop());
  return done - start;
}
"""
FLOOR_PAGE = "<!doctype html><title>floor</title><body></body>"

PRESS_JOIN = """
() => {
  const t = performance.timeOrigin + performance.now();
  document.querySelector('[data-testid="prejoin"] button[type="submit"]').click();
  return t;
}
"""


@contextlib.contextmanager
def delayed_server(rtt_ms: float) -> Iterator[ImpairedLink]:
    """A network namespace for the server behind a link that holds every packet ``rtt_ms / 2``
    each way (tests/e2e/faults.py's :class:`ImpairedLink`: a userspace wire, as this kernel
    has no ``sch_netem``): every browser is ``rtt_ms`` away from the server, and as near to
    the others as ever. Addresses in 198.18.0.0/15 (RFC 2544); all deleted after. Needs
    root."""
    link = ImpairedLink(f"srtt{os.getpid() % 10_000}", "198.18.7")
    link.impairment.delay_ms = rtt_ms / 2
    link.start()
    try:
        yield link
    finally:
        link.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_healthy(url: str, proc: subprocess.Popen[bytes]) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("salon serve exited")
        try:
            with urllib.request.urlopen(f"{url}/api/v1/health", context=ctx, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    sys.exit("salon serve did not become healthy")


class Bench:
    def __init__(self, browser: Any, url: str) -> None:
        self.browser = browser
        self.url = url
        self.contexts: list[Any] = []
        self.serial = 0

    def person(self) -> Any:
        context = self.browser.new_context(
            base_url=self.url, ignore_https_errors=True, permissions=["camera", "microphone"]
        )
        context.add_init_script(FIRST_FRAMES)
        self.contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(20_000)
        return page

    def close_all(self) -> None:
        for context in self.contexts:
            context.close()
        self.contexts.clear()

    def name(self) -> str:
        self.serial += 1
        return f"p{self.serial}"

    def new_room(self, page: Any) -> str:
        page.goto("/")
        room: str = page.evaluate(CREATE_ROOM)["id"]
        return room

    def ready(self, page: Any, room: str, name: str, early: bool = True) -> None:
        """Open the pre-join page with devices started and the name typed in; ``early``: and
        greeted (else Join must be pressed at once, before the page greets)."""
        page.goto(f"/r/{room}")
        # Both modes: the connection check done and the camera started before the name is
        # typed, so that neither measures Join against a page still busy with them, and
        # typing the name enables Join at once.
        page.locator(CHECKED).first.wait_for(state="attached", timeout=30_000)
        page.get_by_role("combobox", name="Camera").get_by_text("fake", exact=False).first.wait_for(
            state="attached"
        )
        page.get_by_label("Your name").fill(name)
        page.locator('[data-testid="prejoin"] button[type="submit"]:enabled').wait_for()
        if early:
            page.wait_for_function(GREETED, timeout=10_000)

    def join(self, page: Any, room: str, name: str) -> float:
        self.ready(page, room, name)
        pressed: float = page.evaluate(PRESS_JOIN)
        page.get_by_test_id("room").wait_for()
        return pressed

    def floor(self) -> float:
        """One trial of the in-page floor (``FLOOR``) in a fresh context, on Salon's origin
        (a secure context for the camera) but a page of its own, not Salon's."""
        page = self.person()
        page.route(
            "**/floor", lambda route: route.fulfill(body=FLOOR_PAGE, content_type="text/html")
        )
        page.goto("/floor")
        took: float = page.evaluate(FLOOR)
        self.close_all()
        return took

    def first_frame(self, page: Any, name: str, timeout: float = 60) -> float:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value: float | None = page.evaluate(
                "(n) => (window.__firstFrame || {})[n] ?? null", name
            )
            if value is not None:
                return value
            page.wait_for_timeout(20)
        stats = page.evaluate("() => window.__salon ? window.__salon.stats() : null")
        raise TimeoutError(f"no frame from {name}; getStats: {stats}")


def timeline(page: Any, since: float) -> dict[str, float]:
    """The client's User Timing marks (signaling and negotiation steps) from ``since`` on,
    relative to it: the first of each name."""
    marks: list[tuple[str, float]] = page.evaluate(
        "() => performance.getEntriesByType('mark')"
        ".map(m => [m.name, performance.timeOrigin + m.startTime])"
    )
    found: dict[str, float] = {}
    for name, t in marks:
        if t >= since:
            found.setdefault(name, round(t - since, 1))
    return found


def long_tasks(page: Any, since: float) -> list[str]:
    """The page's main-thread tasks over 50 ms that ended after ``since``, as
    ``"start+duration"`` in ms relative to it."""
    tasks: list[tuple[float, float]] = page.evaluate("() => window.__longTasks")
    return [f"{t - since:.0f}+{d:.0f}" for t, d in tasks if t + d >= since]


class Steps:
    """Per side (the one already in the room, the joiner), each mark's times over trials."""

    def __init__(self) -> None:
        self.sides: dict[str, dict[str, list[float]]] = {"in the room": {}, "joiner": {}}

    def add(self, side: str, marks: dict[str, float]) -> None:
        for name, t in marks.items():
            self.sides[side].setdefault(name, []).append(t)

    def report(self, trials: int) -> None:
        """The median of each mark seen in at least half the trials, in order."""
        print("  steps (User Timing marks, ms after Join was pressed, p50):")
        for side, marks in self.sides.items():
            common = {n: statistics.median(t) for n, t in marks.items() if 2 * len(t) >= trials}
            steps = ", ".join(
                f"{n.removeprefix('salon:')} {t:.0f}"
                for n, t in sorted(common.items(), key=lambda item: item[1])
            )
            print(f"    {side}: {steps}")


def pairs(
    bench: Bench, trials: int, verbose: bool = False, early: bool = True, steps: Steps | None = None
) -> tuple[list[float], list[float]]:
    """Per trial: Join -> first frame on both sides, and Join -> in the room (signaling);
    each side's marks go to ``steps``."""
    results: list[float] = []
    joined: list[float] = []
    attempts = 0
    while len(results) < trials:
        attempts += 1
        if attempts > 5 * trials:
            raise SystemExit(
                "Join was pressed too late for a trial greeted at Join 5 times over (the page"
                " greets 500 ms after the name is typed): the machine is too busy"
            )
        first, second = bench.person(), bench.person()
        a, b = bench.name(), bench.name()
        room = bench.new_room(first)
        bench.join(first, room, a)
        bench.ready(second, room, b, early)
        pressed: float = second.evaluate(PRESS_JOIN)
        done = max(bench.first_frame(first, b), bench.first_frame(second, a))
        greeted_early = second.evaluate(GREETED)
        if greeted_early != early:  # pressed too late for a late trial: not counted
            bench.close_all()
            continue
        results.append(done - pressed)
        joined.append(second.evaluate("() => window.__inRoom") - pressed)
        marks = timeline(first, pressed), timeline(second, pressed)
        if steps is not None:
            steps.add("in the room", marks[0])
            steps.add("joiner", marks[1])
        if verbose:
            for side, page in (("first ", first), ("second", second)):
                print(side, marks[side == "second"], "long tasks:", long_tasks(page, pressed))
        bench.close_all()
    return results, joined


def report(label: str, two: list[float], joined: list[float]) -> None:
    print(
        f"two people, {label}, {len(two)} trials: Join pressed -> first remote frame on both sides"
    )
    print(f"  p50 {statistics.median(two):7.1f} ms")
    print(f"  p95 {percentile(two, 0.95):7.1f} ms")
    print(f"  min {min(two):7.1f} ms   max {max(two):7.1f} ms")
    signaling = statistics.median(joined)
    print(f"  of which Join -> in the room: p50 {signaling:.1f} ms")


def nth_person(bench: Bench, size: int, verbose: bool = False) -> float:
    """Seat size-1 people, then time the size-th until connected to everyone both ways."""
    pages: list[Any] = []
    names: list[str] = []
    room = ""
    for i in range(size):
        page, name = bench.person(), bench.name()
        if i == 0:
            room = bench.new_room(page)
        if i < size - 1:
            bench.join(page, room, name)
            for other, other_name in zip(pages, names, strict=True):
                bench.first_frame(other, name)
                bench.first_frame(page, other_name)
        pages.append(page)
        names.append(name)
    newcomer, new_name = pages[-1], names[-1]
    bench.ready(newcomer, room, new_name)
    pressed: float = newcomer.evaluate(PRESS_JOIN)
    try:
        seen = [bench.first_frame(newcomer, n) for n in names[:-1]]
        shown = [bench.first_frame(p, new_name) for p in pages[:-1]]
    except TimeoutError as exc:  # a result too: this machine could not connect them in time
        print(f"  person {size}: not connected to everyone within 60 s: {str(exc)[:300]}")
        bench.close_all()
        return math.inf
    if verbose:
        print(f"  person {size}: frames seen from the others at", fmt(seen, pressed))
        print("    the others' first frame from them at", fmt(shown, pressed))
        print("    their marks:", timeline(newcomer, pressed))
        print("    their long tasks:", long_tasks(newcomer, pressed))
    bench.close_all()
    return max(seen + shown) - pressed


def fmt(times: list[float], since: float) -> str:
    return ", ".join(f"{t - since:.0f}" for t in times) + " ms"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pairs-only", action="store_true", help="skip the 4th/6th person runs")
    parser.add_argument(
        "--fourth",
        type=int,
        default=1,
        metavar="TRIALS",
        help="time the 4th person this many times, interleaved over this build and each --against"
        " (p50 and each trial); the 6th person once, this build",
    )
    parser.add_argument("--verbose", action="store_true", help="print each trial's timeline")
    parser.add_argument(
        "--rtt",
        type=float,
        metavar="MS",
        help="put the server in a network namespace MS ms (round trip) away from the browsers",
    )
    parser.add_argument(
        "--floor",
        action="store_true",
        help="interleave trials of the in-page floor (two RTCPeerConnections, no server)",
    )
    parser.add_argument(
        "--against",
        type=Path,
        metavar="DIR",
        action="append",
        default=[],
        help="A/B: interleave trials against another server serving the client built in DIR"
        " (a copy of src/salon/static from another build); may be given more than once",
    )
    parser.add_argument(
        "--compare",
        action="store_true",
        help="interleave trials greeted on the pre-join page with trials greeted at Join",
    )
    args = parser.parse_args()
    if not (REPO / "src" / "salon" / "static" / "index.html").exists():
        sys.exit("build the client first: make web")
    with contextlib.ExitStack() as stack:
        host, netns = "127.0.0.1", []
        if args.rtt is not None:
            link = stack.enter_context(delayed_server(args.rtt))
            host, netns = link.address, ["ip", "netns", "exec", link.namespace]
            print(f"the server is {args.rtt:g} ms (round trip) away from the browsers")
        urls = [serve(stack, netns, host, None)]
        urls += [serve(stack, netns, host, client) for client in args.against]
        results = measure(args, urls)
    results.report()


def serve(stack: contextlib.ExitStack, netns: list[str], host: str, client: Path | None) -> str:
    """Start ``salon serve`` (in the namespace ``netns`` names, if any) on a free port of
    ``host``, serving the client built in ``client`` (default: the package's); its URL."""
    port = free_port()
    data = stack.enter_context(tempfile.TemporaryDirectory())
    env = {
        **os.environ,
        "SALON_LOG_LEVEL": "warning",
        # Every browser comes from one address: the per-address handshake and room creation
        # rates are lifted (a trial creates a room).
        "SALON_LIMITS__HANDSHAKE_BURST": "1000000",
        "SALON_LIMITS__ROOM_CREATION_BURST": "1000000",
    }
    if client is not None:
        env["SALON_STATIC_DIR"] = str(client.resolve())
    proc = subprocess.Popen(
        [*netns, str(SALON), "serve", "--host", host, "--port", str(port), "--data-dir", data],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    stack.callback(stop_process, proc)
    url = f"https://{host}:{port}"
    wait_healthy(url, proc)
    return url


class Results:
    """What a run measured."""

    def __init__(self) -> None:
        self.runs: dict[str, tuple[list[float], list[float]]] = {}
        self.steps: dict[str, Steps] = {}
        self.floor: list[float] = []
        self.fourth: dict[str, list[float]] = {}
        self.sixth: float | None = None

    def report(self) -> None:
        for label, (two, joined) in self.runs.items():
            report(label, two, joined)
            self.steps[label].report(len(two))
            if self.floor:
                ratio = statistics.median(two) / statistics.median(self.floor)
                print(f"  p50 / the floor's p50: {ratio:.2f}x")
        if self.floor:
            floor = self.floor
            print(f"the floor (two RTCPeerConnections in one page), {len(floor)} trials:")
            print(f"  p50 {statistics.median(floor):7.1f} ms")
            print(f"  p95 {percentile(floor, 0.95):7.1f} ms")
            print(f"  min {min(floor):7.1f} ms   max {max(floor):7.1f} ms")
        for label, fourth in self.fourth.items():
            each = ", ".join(f"{t:.0f}" for t in fourth)
            print(
                f"4th person fully connected to everyone, {label}, {len(fourth)} trials:"
                f" p50 {statistics.median(fourth):7.1f} ms (each: {each})"
            )
        if self.sixth is not None:
            sixth = f"{self.sixth:7.1f} ms" if math.isfinite(self.sixth) else "not within 60 s"
            print(f"6th person fully connected to everyone: {sixth}")


def measure(args: argparse.Namespace, urls: list[str]) -> Results:
    """Trials interleaved, one of each mode at a time: ``urls[0]`` greeted early; with
    ``--compare`` greeted at Join; each further URL (``--against``) greeted early."""
    results = Results()
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS_20_FPS)
        benches = [Bench(browser, url) for url in urls]
        bench = benches[0]
        modes = [("greeted on the pre-join page", True, bench)]
        if args.compare:
            modes.append(("greeted at Join (before #17)", False, bench))
        for client, other in zip(args.against, benches[1:], strict=True):
            modes.append((f"the client in {client}", True, other))
        for _ in range(args.trials):
            for label, early, server in modes:
                steps = results.steps.setdefault(label, Steps())
                two, joined = pairs(server, 1, args.verbose, early, steps)
                done = results.runs.setdefault(label, ([], []))
                done[0].extend(two)
                done[1].extend(joined)
            if args.floor:
                results.floor.append(bench.floor())
        if not args.pairs_only:
            for _ in range(args.fourth):  # interleaved over this build and each --against
                for label, _, server in modes[:1] + modes[1 + args.compare :]:
                    fourth = results.fourth.setdefault(label, [])
                    fourth.append(nth_person(server, 4, args.verbose))
            results.sixth = nth_person(bench, 6, args.verbose)
        browser.close()
    return results


if __name__ == "__main__":
    main()
