"""Shared by the browser tests and the benchmarks: Debian's Chromium and child processes."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aiortc import RTCBundlePolicy, RTCConfiguration, RTCPeerConnection

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium; Playwright drives it with ``executable_path`` (never its own download)."""

_CHROMIUM_FLAGS = [
    "--use-fake-ui-for-media-stream",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Several people share one browser: do not throttle the pages in the background.
    "--disable-background-timer-throttling",
    "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]

CHROMIUM_ARGS = ["--use-fake-device-for-media-stream=fps=10", *_CHROMIUM_FLAGS]
"""For the tests: the fake camera (640 × 480) sends 10 frames a second, not Chromium's 20.
The tests prove media by frame counters that rise, which 10 a second do as well, and each
browser of a room encodes, decodes and paints half as many frames on the 2 cores the suite
has (tests/e2e/test_room.py: 110 s at 20 a second, 90 s at 10)."""

CHROMIUM_ARGS_20_FPS = ["--use-fake-device-for-media-stream", *_CHROMIUM_FLAGS]
"""The fake camera at Chromium's default 20 frames a second: for the benchmarks, as every
number in docs/BENCHMARKS.md was measured, and for the tests whose thresholds count frames
(tests/e2e/test_netem.py's share of rising samples under loss, test_recording.py's frames
in the file), measured at that rate."""


@contextlib.contextmanager
def launched_chromium(
    playwright: Any, args: list[str], executable: Path = CHROMIUM
) -> Iterator[Any]:
    """A headless Chromium launched by Playwright (sync API) with ``args``, closed on exit.
    ``executable``: Debian's Chromium, or a script that starts it (in a network namespace)."""
    browser = playwright.chromium.launch(executable_path=str(executable), args=args, headless=True)
    try:
        yield browser
    finally:
        browser.close()


def stop_process(proc: subprocess.Popen[bytes], grace: float = 10) -> None:
    """Ask a child to stop, and kill it if it has not within ``grace`` seconds."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def local_peer_connection(
    bundle_policy: RTCBundlePolicy = RTCBundlePolicy.BALANCED,
) -> RTCPeerConnection:
    """An aiortc ``RTCPeerConnection`` with no ICE servers: host candidates only. (aiortc's
    default configuration asks Google's STUN server; with no DNS, as in CI, the failed lookup
    leaves its sockets unclosed, and their ``ResourceWarning`` fails whichever test is
    running when they are collected.) ``bundle_policy``: W3C webrtc-pc §4.2.5, aiortc's
    default ``balanced`` unless given."""
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=bundle_policy))
