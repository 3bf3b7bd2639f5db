"""End-to-end fixtures: the real server on a free port, Debian's Chromium with fake devices,
one browser context per person.

The server is started by the tests themselves (``salon serve`` over HTTPS with its
self-signed certificate) and must already have the built client in ``src/salon/static``
(``make web``). Media is proven with ``getStats()`` numbers that rise, read through the
client's ``window.__salon.stats()`` hook, never by the presence of a DOM element.
"""

from __future__ import annotations

import contextlib
import os
import socket
import ssl
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from salon.core.turnconfig import PeerPolicy, TurnServerConfig
from salon.server.coturn import find_turnserver
from tests.e2e.faults import SERVER_LOGS, server_log_tails
from tests.support import CHROMIUM, CHROMIUM_ARGS, launched_chromium, stop_process
from tests.turn.conftest import REALM, RELAY_PORTS, SECRET, free_ports

REPO = Path(__file__).resolve().parents[2]
SALON = REPO / ".venv" / "bin" / "salon"
STATIC_INDEX = REPO / "src" / "salon" / "static" / "index.html"
SCREENSHOTS = REPO / "docs" / "screenshots"


# Makes getUserMedia refuse the camera the way a browser does when the person blocks it.
DENY_CAMERA = """
(() => {
  const devices = navigator.mediaDevices;
  const original = devices.getUserMedia.bind(devices);
  devices.getUserMedia = (constraints) => {
    if (constraints && constraints.video) {
      return Promise.reject(new DOMException("Permission denied", "NotAllowedError"));
    }
    return original(constraints);
  };
})();
"""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test's report ends with the last lines of each ``salon serve`` log written
    while it ran: what the server saw is often the only clue to a failure seen only in CI."""
    report = yield
    if report.failed:
        report.sections.extend(server_log_tails(since=call.start))
    return report


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _healthy(url: str) -> bool:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with urllib.request.urlopen(f"{url}/api/v1/health", context=context, timeout=1) as r:
            return bool(r.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Salon server over HTTPS on a free port; yields its base URL. Every test's
    rooms are created on it from this machine's one address: more than the default
    ``room_creation_burst`` (tests/integration/test_rest.py proves that limit)."""
    env = {"SALON_LIMITS__ROOM_CREATION_BURST": "10000"}
    with salon_server(tmp_path_factory.mktemp("salon-e2e"), env) as url:
        yield url


@contextlib.contextmanager
def salon_server(data: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """``salon serve`` over HTTPS on a free port with ``data`` as its data folder and ``env``
    added to its environment (``SALON_TURN_URLS``, …); yields its base URL, stops it after."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the e2e tests")
    if not STATIC_INDEX.exists():
        pytest.skip("the browser client is not built: run 'make web' first")
    port = _free_port()
    path = data / "server.log"
    log = path.open("w")
    # info: the SFU's refusals and retries are logged there, for a failed test's report.
    proc = subprocess.Popen(
        [str(SALON), "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data)],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "SALON_LOG_LEVEL": "info", **(env or {})},
    )
    SERVER_LOGS.add(path)
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"salon serve did not start; see {data / 'server.log'}")
            time.sleep(0.1)
        yield url
    finally:
        stop_process(proc)
        log.close()


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Any]:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to run the e2e tests")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def browser(playwright_instance: Any) -> Iterator[Any]:
    """One headless Chromium per test module; each person gets a context of their own."""
    with launched_chromium(playwright_instance, CHROMIUM_ARGS) as browser:
        yield browser


Person = Callable[..., Any]


def _trace_websocket(ws: Any) -> None:
    ws.on("framereceived", lambda frame: print("ws <", str(frame)[:120]))
    ws.on("framesent", lambda frame: print("ws >", str(frame)[:120]))


def _watch(page: Any) -> None:
    """Set up a page of a person (once): no page may raise a dialog (an alert() would mean
    injected script ran: they are recorded in ``page.salon_dialogs``); what the page
    complained about is printed, for pytest to show when a test fails."""
    if hasattr(page, "salon_dialogs"):
        return
    page.set_default_timeout(15_000)
    dialogs: list[str] = []
    page.salon_dialogs = dialogs

    def on_dialog(dialog: Any) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    page.on("console", lambda m: m.type in ("warning", "error") and print("console:", m.text))
    page.on("pageerror", lambda error: print("page error:", error))
    if os.environ.get("SALON_E2E_WS"):
        page.on("websocket", _trace_websocket)


@pytest.fixture
def person(browser: Any, server: str) -> Iterator[Person]:
    """``person(deny_camera=False)`` opens a fresh context (a new person) and returns a page;
    ``base_url`` points it at another server than the shared one."""
    contexts: list[Any] = []

    def open_person(
        *,
        deny_camera: bool = False,
        width: int = 1280,
        height: int = 720,
        base_url: str | None = None,
    ) -> Any:
        context = browser.new_context(
            base_url=base_url or server,
            ignore_https_errors=True,
            viewport={"width": width, "height": height},
            permissions=["microphone"] if deny_camera else ["camera", "microphone"],
        )
        if deny_camera:
            context.add_init_script(DENY_CAMERA)
        contexts.append(context)
        context.on("page", _watch)  # a second tab of the same person too
        page = context.new_page()
        _watch(page)
        return page

    yield open_person
    raised = [d for c in contexts for p in c.pages for d in p.salon_dialogs]
    for context in contexts:
        context.close()
    assert raised == [], f"pages raised dialogs: {raised}"


def new_room(page: Any) -> str:
    """Create a room over REST from the page's origin; returns its id."""
    if not page.url.startswith("http"):
        page.goto("/")
    room: str = page.evaluate(
        "fetch('/api/v1/csrf').then(r => r.json()).then(t => fetch('/api/v1/rooms',"
        " {method: 'POST', headers: {'X-CSRF-Token': t.token}})).then(r => r.json())"
    )["id"]
    return room


def join_room(page: Any, room: str, name: str, *, camera: bool = True) -> None:
    """Go through the pre-join page into the room; ``camera=False`` turns the camera off
    there first (for tests about text, not media: a page whose camera is off encodes next
    to nothing, which counts with four pages on two cores)."""
    page.goto(f"/r/{room}")
    page.get_by_label("Your name").fill(name)
    if not camera:
        page.get_by_role("button", name="Turn camera off").click()
        page.get_by_role("button", name="Turn camera on").wait_for()
    page.get_by_role("button", name="Join now").click()
    page.get_by_test_id("room").wait_for()


def stats(page: Any) -> dict[str, dict[str, Any]]:
    """Inbound getStats() numbers per remote member name, from the client's test hook."""
    result: dict[str, dict[str, Any]] = page.evaluate(
        "window.__salon ? window.__salon.stats() : {}"
    )
    return result


def wait_for_media(
    page: Any,
    names: list[str],
    *,
    video: bool = True,
    audio: bool = True,
    field: str = "videoFramesDecoded",
    timeout: float = 30.0,
) -> None:
    """Wait until, from each named member, decoded frames (and audio bytes) rise between two
    samples a quarter second apart (the fake camera sends 10 frames a second:
    tests/support.py; a window that caught no frame is followed by the next)."""
    deadline = time.monotonic() + timeout
    after = stats(page)
    while True:
        before = after
        page.wait_for_timeout(250)
        after = stats(page)
        ok = all(
            (not video or _rising(before, after, n, field))
            and (not audio or _rising(before, after, n, "audioBytesReceived"))
            for n in names
        )
        if ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"media from {names} did not flow: {after}")


def _rising(before: dict[str, Any], after: dict[str, Any], name: str, key: str) -> bool:
    return name in before and name in after and after[name][key] > before[name][key] > 0


def tile(page: Any, name: str) -> Any:
    """The grid tile of the member called ``name``."""
    return page.locator(f'[data-testid="tile"][data-member="{name}"]')


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


SIZES = {"": (1280, 800), "-phone": (390, 844)}


def screenshots(page: Any, name: str) -> None:
    """``name.png`` at 1280×800 and ``name-phone.png`` at 390×844; the page keeps its size
    after. Each waits for the layout to settle at its size (two animation frames)."""
    before = page.viewport_size
    for suffix, (width, height) in SIZES.items():
        page.set_viewport_size({"width": width, "height": height})
        page.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        page.wait_for_timeout(300)  # CSS transitions of the stage (250 ms) end
        screenshot(page, f"{name}{suffix}")
    if before is not None:
        page.set_viewport_size(before)


# Records every Content-Security-Policy violation the page reports (an injected inline handler
# or script is blocked by the CSP and reported here even when it would never raise a dialog).
CSP_WATCH = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__cspViolations.push(e.violatedDirective);
});
"""


def watch_csp(page: Any) -> None:
    """Install the CSP-violation recorder for every later navigation of ``page``'s context."""
    page.context.add_init_script(CSP_WATCH)


def csp_violations(page: Any) -> list[str]:
    found: list[str] = page.evaluate("window.__cspViolations ?? null")
    assert found is not None, "the CSP watcher is not installed on this page"
    return found


def register(page: Any, username: str, password: str, display_name: str = "") -> None:
    """Create an account through the /register page; the page is signed in afterwards."""
    page.goto("/register")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Display name").fill(display_name)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Create account").click()
    page.get_by_test_id("home").wait_for()


def sign_in(page: Any, username: str, password: str) -> None:
    """Sign in through the /login page."""
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_test_id("home").wait_for()


@pytest.fixture
def restartable(tmp_path: Path) -> Iterator[Any]:
    """``salon serve`` on a fixed port and data folder that the test may ``kill -9``, drain
    and start again on the same port (``tests/e2e/faults.py``); stopped after the test."""
    from tests.e2e.faults import salon_process

    data = tmp_path / "data"
    data.mkdir()
    with salon_process(data) as running:
        yield running


def loopback_relay(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> tuple[TurnServerConfig, Path]:
    """A coturn configuration on free 127.0.0.1 ports that relays between loopback peers, and
    a folder for its state; skips (saying why) where Debian's coturn is not installed.

    ``PeerPolicy.ANY`` (``allow-loopback-peers``, nothing denied) is for these tests only:
    both browsers are on this machine, so each relay's peer is a loopback address, which the
    hardened configuration refuses on purpose (tests/turn proves it). Never deploy it."""
    if find_turnserver() is None:
        reason = "coturn's turnserver is not installed (make test installs Debian's coturn)"
        print(f"SKIP: {reason}", file=sys.__stderr__)
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp(name)
    first = free_ports(RELAY_PORTS + 1)
    config = TurnServerConfig(
        secret=SECRET,
        realm=REALM,
        listening_port=first,
        min_port=first + 1,
        max_port=first + RELAY_PORTS,
        listening_ips=("127.0.0.1",),
        relay_ips=("127.0.0.1",),
        peers=PeerPolicy.ANY,
        log_file="stdout",
        state_dir=str(folder),
    )
    return config, folder
