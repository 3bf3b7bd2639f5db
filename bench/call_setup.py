"""Call set-up time in real Chromium against a real Salon server (a benchmark, not a test).

* Two people, 20 trials: from the second person pressing Join to the first decoded remote
  video frame on *both* sides (``requestVideoFrameCallback``). Prints p50 and p95.
* Bigger rooms: the time for a 4th and a 6th person, from pressing Join, until every pair
  involving them has shown a first remote frame on both ends ("fully connected").

Each person waits on the pre-join page until it has greeted the server (the
``salon:prejoin-greeted`` mark), as a person looking at their preview for a moment would;
Join then sends only ``join``. ``--compare`` interleaves those trials with ones that press Join
as soon as the name is typed, before the page greets early (its greeting waits 500 ms for the
name to settle), so that Join opens the socket and says ``hello`` itself, as before issue #17.

Run after building the client (``make web``)::

    .venv/bin/python bench/call_setup.py [--trials 20] [--compare] [--pairs-only]

Target: p50 <= 200 ms on loopback.
"""

from __future__ import annotations

import argparse
import os
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the repository's `tests` importable

from tests.support import CHROMIUM, CHROMIUM_ARGS, stop_process  # noqa: E402

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

PRESS_JOIN = """
() => {
  const t = performance.timeOrigin + performance.now();
  document.querySelector('[data-testid="prejoin"] button[type="submit"]').click();
  return t;
}
"""


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
    """The client's User Timing marks (signaling and negotiation steps), relative to ``since``."""
    marks: list[tuple[str, float]] = page.evaluate(
        "() => performance.getEntriesByType('mark')"
        ".map(m => [m.name, performance.timeOrigin + m.startTime])"
    )
    return {name: round(t - since, 1) for name, t in marks}


def pairs(
    bench: Bench, trials: int, verbose: bool = False, early: bool = True
) -> tuple[list[float], list[float]]:
    """Per trial: Join -> first frame on both sides, and Join -> in the room (signaling)."""
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
        if verbose:
            print("first ", timeline(first, pressed))
            print("second", timeline(second, pressed))
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


def nth_person(bench: Bench, size: int) -> float:
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
    times = [bench.first_frame(newcomer, n) for n in names[:-1]]
    times += [bench.first_frame(p, new_name) for p in pages[:-1]]
    bench.close_all()
    return max(times) - pressed


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--pairs-only", action="store_true", help="skip the 4th/6th person runs")
    parser.add_argument("--verbose", action="store_true", help="print each trial's timeline")
    parser.add_argument(
        "--compare",
        action="store_true",
        help="interleave trials greeted on the pre-join page with trials greeted at Join",
    )
    args = parser.parse_args()
    if not (REPO / "src" / "salon" / "static" / "index.html").exists():
        sys.exit("build the client first: make web")
    port = free_port()
    url = f"https://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as data:
        proc = subprocess.Popen(
            [str(SALON), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", data],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={
                **os.environ,
                "SALON_LOG_LEVEL": "warning",
                # Every browser comes from 127.0.0.1: the per-address handshake rate is lifted.
                "SALON_LIMITS__HANDSHAKE_BURST": "1000000",
            },
        )
        try:
            wait_healthy(url, proc)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
                bench = Bench(browser, url)
                runs: dict[str, tuple[list[float], list[float]]] = {}
                modes = [("greeted on the pre-join page", True)]
                if args.compare:
                    modes.append(("greeted at Join (before #17)", False))
                for _ in range(args.trials):  # interleaved, one trial of each at a time
                    for label, early in modes:
                        two, joined = pairs(bench, 1, args.verbose, early)
                        done = runs.setdefault(label, ([], []))
                        done[0].extend(two)
                        done[1].extend(joined)
                fourth = None if args.pairs_only else nth_person(bench, 4)
                sixth = None if args.pairs_only else nth_person(bench, 6)
                browser.close()
        finally:
            stop_process(proc)
    for label, (two, joined) in runs.items():
        report(label, two, joined)
    if fourth is not None and sixth is not None:
        print(f"4th person fully connected to everyone: {fourth:7.1f} ms")
        print(f"6th person fully connected to everyone: {sixth:7.1f} ms")


if __name__ == "__main__":
    main()
