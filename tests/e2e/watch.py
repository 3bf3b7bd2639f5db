"""What the e2e fault tests watch inside the pages: getStats() sampled in the page every
250 ms, the "Reconnecting…" banner, every WebSocket frame, console errors, and a shared
instant to click at on several pages."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e.faults import SAMPLE_MS, now_ms

SAMPLER = """(interval) => {
  if (window.__frameTimer) clearInterval(window.__frameTimer);
  window.__frames = [];
  window.__banner = window.__banner || [];
  let busy = false;
  window.__frameTimer = setInterval(async () => {
    if (busy) return;
    busy = true;
    try {
      const hook = window.__salon;
      const stats = hook ? await hook.stats() : null;
      const row = {};
      for (const [name, p] of Object.entries(stats || {})) {
        row[name] = {
          v: p.videoFramesDecoded, sc: p.screenFramesDecoded, a: p.audioBytesReceived,
          c: p.connection, g: p.signaling, l: p.localCandidateType, r: p.remoteCandidateType,
        };
      }
      window.__frames.push({ t: Date.now(), s: stats ? row : null });
    } catch (error) {
      window.__frames.push({ t: Date.now(), s: null, e: String(error) });
    } finally {
      busy = false;
    }
  }, interval);
  if (!window.__bannerObserver) {
    const selector = '[data-testid="reconnecting"]';
    let shown = document.querySelector(selector) !== null;
    if (shown) window.__banner.push({ t: Date.now(), shown });
    window.__bannerObserver = new MutationObserver(() => {
      const now = document.querySelector(selector) !== null;
      if (now !== shown) {
        shown = now;
        window.__banner.push({ t: Date.now(), shown });
      }
    });
    window.__bannerObserver.observe(document.body, { childList: true, subtree: true });
  }
}"""


def start_sampler(page: Any, interval_ms: int = SAMPLE_MS) -> None:
    """Start sampling ``window.__salon.stats()`` inside ``page`` every ``interval_ms``."""
    page.evaluate(SAMPLER, interval_ms)


def samples(page: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = page.evaluate("window.__frames || []")
    return found


def stop_sampler(page: Any) -> list[dict[str, Any]]:
    """Stop the sampler; returns everything it recorded."""
    found: list[dict[str, Any]] = page.evaluate(
        "(() => { clearInterval(window.__frameTimer); window.__frameTimer = null;"
        " return window.__frames || []; })()"
    )
    return found


def banner_changes(page: Any) -> list[dict[str, Any]]:
    """When the "Reconnecting…" banner appeared and went (``{t, shown}``), since sampling."""
    found: list[dict[str, Any]] = page.evaluate("window.__banner || []")
    return found


@dataclass
class Flow:
    """How one inbound number (video frames decoded, …) from one remote member moved."""

    name: str
    key: str
    samples: int = 0
    rises: int = 0
    resets: int = 0  # the number went down: a new RTCPeerConnection or receiver
    missing: int = 0  # samples without that member (or without the stats hook)
    longest_gap_ms: float = 0.0  # longest time without a rise, window edges included
    gap_at: float = 0.0  # wall time at which that gap began
    first: float | None = None
    last: float | None = None
    rise_times: list[float] = field(default_factory=list)

    def __str__(self) -> str:
        return (
            f"{self.key} from {self.name}: longest gap {self.longest_gap_ms:.0f} ms"
            f" (from t={self.gap_at:.0f}), {self.rises}/{self.samples} samples rising,"
            f" {self.resets} resets, {self.missing} missing"
        )


def flow(
    rows: list[dict[str, Any]],
    name: str,
    key: str = "v",
    since: float | None = None,
    until: float | None = None,
) -> Flow:
    """Measure how the number ``key`` from ``name`` rose in sampler ``rows`` between the wall
    times ``since`` and ``until`` (ms; default: the whole record)."""
    out = Flow(name, key)
    previous: float | None = None
    window = [
        r for r in rows if (since is None or r["t"] >= since) and (until is None or r["t"] <= until)
    ]
    # The value just before the window, so its first sample can count as a rise.
    for row in rows:
        if since is not None and row["t"] < since and row["s"] and name in row["s"]:
            previous = row["s"][name][key]
    if not window:
        return out
    out.first, out.last = window[0]["t"], window[-1]["t"]
    last_rise = window[0]["t"] if since is None else since
    for row in window:
        out.samples += 1
        value = (row["s"] or {}).get(name, {}).get(key)
        if value is None:
            out.missing += 1
            continue
        if previous is not None and value < previous:
            out.resets += 1
        elif previous is not None and value > previous:
            out.rises += 1
            out.rise_times.append(row["t"])
            if row["t"] - last_rise > out.longest_gap_ms:
                out.longest_gap_ms, out.gap_at = row["t"] - last_rise, last_rise
            last_rise = row["t"]
        previous = value
    end = window[-1]["t"] if until is None else min(until, window[-1]["t"])
    if end - last_rise > out.longest_gap_ms:
        out.longest_gap_ms, out.gap_at = end - last_rise, last_rise
    return out


def first_rise_after(rows: list[dict[str, Any]], name: str, after: float, key: str = "v") -> float:
    """The wall time of the first sample after ``after`` at which ``key`` from ``name`` rose
    (and rose again at the next sample: one stray frame is not media back)."""
    rises = flow(rows, name, key, since=after).rise_times
    for a, b in itertools.pairwise(rises):
        if b - a <= 2 * SAMPLE_MS + 100:
            return a
    return float("nan")


def connection_states(rows: list[dict[str, Any]], name: str) -> list[tuple[float, str]]:
    """Each change of the RTCPeerConnection state toward ``name``: ``(wall ms, state)``."""
    changes: list[tuple[float, str]] = []
    for row in rows:
        state = (row["s"] or {}).get(name, {}).get("c")
        if state is not None and (not changes or changes[-1][1] != state):
            changes.append((row["t"], state))
    return changes


@dataclass
class Frame:
    at: float  # wall ms when Playwright saw it
    url: str
    sent: bool
    message: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.message.get("type", "?"))


class FrameLog:
    """Every WebSocket frame ``page`` received and sent, parsed (install before the page opens
    its first socket), and when each socket opened and closed."""

    def __init__(self, page: Any) -> None:
        self.frames: list[Frame] = []
        self.sockets: list[tuple[float, str, str]] = []  # (wall ms, url, "open"/"close")
        page.on("websocket", self._on_socket)

    def _on_socket(self, ws: Any) -> None:
        url = ws.url
        self.sockets.append((now_ms(), url, "open"))
        ws.on("framereceived", lambda payload: self._add(url, payload, sent=False))
        ws.on("framesent", lambda payload: self._add(url, payload, sent=True))
        ws.on("close", lambda _ws: self.sockets.append((now_ms(), url, "close")))

    def _add(self, url: str, payload: Any, *, sent: bool) -> None:
        if isinstance(payload, bytes):
            payload = payload.decode(errors="replace")
        try:
            message = json.loads(payload)
        except ValueError:
            message = {"type": "<not json>", "raw": str(payload)[:200]}
        if isinstance(message, dict):
            self.frames.append(Frame(now_ms(), url, sent, message))

    def received(self, kind: str | None = None, since: float = 0) -> list[dict[str, Any]]:
        return [
            f.message
            for f in self.frames
            if not f.sent and f.at >= since and (kind is None or f.type == kind)
        ]

    def sent(self, kind: str | None = None, since: float = 0) -> list[dict[str, Any]]:
        return [
            f.message
            for f in self.frames
            if f.sent and f.at >= since and (kind is None or f.type == kind)
        ]

    def first_at(self, kind: str, since: float = 0, *, sent: bool = False) -> float | None:
        return next(
            (f.at for f in self.frames if f.sent == sent and f.at >= since and f.type == kind),
            None,
        )

    def opened(self, since: float = 0) -> int:
        return sum(1 for at, _url, what in self.sockets if what == "open" and at >= since)


class ConsoleErrors:
    """Console errors and uncaught exceptions of ``page``, with wall times."""

    def __init__(self, page: Any) -> None:
        self.errors: list[tuple[float, str]] = []
        page.on("console", self._console)
        page.on("pageerror", lambda error: self.errors.append((now_ms(), f"pageerror: {error}")))

    def _console(self, message: Any) -> None:
        if message.type == "error":
            self.errors.append((now_ms(), message.text))

    def texts(self, since: float = 0) -> list[str]:
        return [text for at, text in self.errors if at >= since]


def poll(
    page: Any,
    condition: Callable[[], Any],
    what: str,
    timeout: float,
    every_ms: int = 100,
) -> Any:
    """Wait until ``condition()`` is truthy, checking every ``every_ms`` (Playwright keeps
    dispatching page events meanwhile); returns its value, or fails saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        page.wait_for_timeout(every_ms)


def snapshot_ids(page: Any) -> dict[str, Any]:
    """The member's own id and the remote members' ids and names, from the client's hook."""
    found: dict[str, Any] = page.evaluate(
        """() => {
          const s = window.__salon && window.__salon.snapshot();
          if (!s) return {};
          return { self: s.selfId, name: s.selfName, phase: s.phase, room: s.room,
                   members: s.members.map((m) => [m.id, m.name]) };
        }"""
    )
    return found


# Runs fn for each given action at the shared wall-clock instant `at` (ms) in the page, and
# records when each ran in window.__firedAt.
AT_INSTANT = """([at, labels]) => {
  window.__firedAt = [];
  setTimeout(() => {
    for (const label of labels) {
      const button = document.querySelector(`button[aria-label="${label}"]`);
      window.__firedAt.push([label, Date.now(), button !== null && !button.disabled]);
      if (button) button.click();
    }
  }, at - Date.now());
}"""


def click_at(page: Any, at: float, *labels: str) -> None:
    """Click the buttons named ``labels`` (aria-label) in ``page`` at wall time ``at`` (ms)."""
    page.evaluate(AT_INSTANT, [at, list(labels)])


def fired(page: Any) -> list[list[Any]]:
    found: list[list[Any]] = page.evaluate("window.__firedAt || []")
    return found


def media_flows(label: str, rows: list[dict[str, Any]], other: str) -> tuple[Flow, Flow]:
    """Video frames decoded and audio bytes from ``other`` over the whole sampler record of
    one page, printed (``pytest -s``) under ``label``."""
    video, audio = flow(rows, other, "v"), flow(rows, other, "a")
    span = (rows[-1]["t"] - rows[0]["t"]) / 1000 if rows else 0.0
    print(f"[{label}] over {span:.1f} s, {len(rows)} samples: {video}")
    print(f"[{label}] {audio}")
    return video, audio


def error_lines(log: str) -> list[str]:
    """The ERROR lines of a server log: none is allowed for a fault handled as designed
    (docs RELIABILITY: "the server log has no ERROR line for a case the server handled")."""
    return [line for line in log.splitlines() if line.startswith("ERROR")]


def banner_report(label: str, page: Any) -> list[dict[str, Any]]:
    """Print and return when the "Reconnecting…" banner was shown and hidden."""
    changes = banner_changes(page)
    shown = [c["t"] for c in changes if c["shown"]]
    hidden = [c["t"] for c in changes if not c["shown"]]
    spans = [f"{(h - s) / 1000:.2f} s" for s, h in zip(shown, hidden, strict=False)]
    print(f"[{label}] reconnecting banner: shown {len(shown)}x, visible for {spans}")
    return changes


def warm_up(page: Any, other: str, rises: int = 6, timeout: float = 15.0) -> None:
    """Wait until the sampler in ``page`` has seen video from ``other`` rise ``rises`` times:
    the record then starts with the call in full flow, before any fault."""
    poll(
        page,
        lambda: flow(samples(page), other, "v").rises >= rises,
        f"the sampler to see video from {other}",
        timeout,
        every_ms=250,
    )
