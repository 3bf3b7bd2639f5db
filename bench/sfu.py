"""Mesh versus SFU in real Chromium, and the largest SFU room this machine holds (a benchmark,
not a test; issue #13, docs/SFU.md).

1. **Six people, mesh then SFU.** Six headless Chromiums (one browser each, so that each one's
   CPU can be told apart) join one room of a real ``salon serve``: first with no SFU (a full
   mesh), then with a real ``janus`` and the mesh limit at 1 (the room moves to Janus at the
   second join). Once every page decodes every other person, each browser's CPU time per
   second (its whole process tree, from ``/proc``) and its outbound bitrate (``getStats()``
   ``outbound-rtp`` bytes) are measured over ``--seconds``, and printed side by side.
2. **The largest SFU room.** One Chromium in a room on Janus, and Python publishers (aiortc,
   a video and a tone, through Salon's signaling: tests/turn/sfu_member.py) added two at a
   time. They publish only: each answers the SFU's offers ``inactive``, so that the two
   cores are not spent decoding every publisher in every publisher. Their video is a VP8
   clip encoded once and sent again and again in real time, as from cameras whose encoders
   are on other machines, at 320×240: the simulcast layer Janus forwards to tiles as small as
   this room's (aiortc cannot send simulcast). ``--encode`` makes each publisher encode a
   generated 640×480 video here (aiortc) instead, which measures this machine's encoders and
   the high layer too. After each step, the page's decoded frames per second from every
   publisher are measured; the room "holds" while each one is at least ``--min-fps``. The
   largest room that holds is printed.

Run after ``make web``, as root or not::

    .venv/bin/python bench/sfu.py [--people 6] [--seconds 15] [--max-publishers 20]
        [--min-fps 15] [--encode] [--skip-mesh] [--skip-largest] [--skip-people]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import psutil
from aiortc import MediaStreamTrack
from playwright.sync_api import sync_playwright

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a script: make the repository's `tests` importable

from tests.support import CHROMIUM, CHROMIUM_ARGS_20_FPS, stop_process  # noqa: E402
from tests.turn.conftest import running_janus  # noqa: E402
from tests.turn.sfu_member import SfuMember  # noqa: E402

from call_setup import free_port, wait_healthy  # noqa: E402
from machine import describe  # noqa: E402
from salon.server.janus import JanusProcess  # noqa: E402

SALON = REPO / ".venv" / "bin" / "salon"
ROOM = "bench"

# Per remote member name: decoded video frames; and the page's outbound bytes (all layers).
PAGE_STATS = """
async () => {
  const inbound = window.__salon ? await window.__salon.stats() : {};
  let sent = 0;
  for (const pc of window.__pcs || []) {
    if (pc.connectionState === 'closed') continue;
    (await pc.getStats()).forEach((s) => { if (s.type === 'outbound-rtp') sent += s.bytesSent; });
  }
  const frames = {};
  for (const [name, s] of Object.entries(inbound)) frames[name] = s.videoFramesDecoded || 0;
  return {frames, sent};
}
"""

PC_TRACKER = """
(() => {
  const Original = window.RTCPeerConnection;
  window.__pcs = [];
  window.RTCPeerConnection = class extends Original {
    constructor(...args) { super(...args); window.__pcs.push(this); }
  };
})();
"""


@contextlib.contextmanager
def salon(data: Path, env: dict[str, str]) -> Iterator[str]:
    port = free_port()
    command = [str(SALON), "serve", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--data-dir", str(data)]
    full_env = {"SALON_LOG_LEVEL": "warning", "SALON_LIMITS__MAX_ROOM_MEMBERS": "30", **env}
    proc = subprocess.Popen(
        command, env={**os.environ, **full_env}, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    url = f"https://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc)
        yield url
    finally:
        stop_process(proc)


def sfu_env(running: JanusProcess, mesh_limit: int) -> dict[str, str]:
    return {
        "SALON_SFU_URL": running.config.url,
        "SALON_SFU_API_SECRET": running.config.api_secret,
        "SALON_SFU_ADMIN_KEY": running.config.admin_key,
        "SALON_SFU_MESH_LIMIT": str(mesh_limit),
        "SALON_SFU_CHECK_SECONDS": "0.5",
    }


class Person:
    """One headless Chromium of its own (so its CPU is its own) with one page in the room."""

    def __init__(self, playwright: Any, url: str, name: str, scratch: Path) -> None:
        self.name = name
        self.profile = Path(tempfile.mkdtemp(dir=scratch))
        self.context = playwright.chromium.launch_persistent_context(
            str(self.profile),
            executable_path=str(CHROMIUM),
            args=CHROMIUM_ARGS_20_FPS,
            headless=True,
            ignore_https_errors=True,
            base_url=url,
            viewport={"width": 1280, "height": 720},
            permissions=["camera", "microphone"],
        )
        self.context.add_init_script(PC_TRACKER)
        self.page = self.context.new_page()
        self.page.set_default_timeout(60_000)

    def join(self) -> None:
        self.page.goto(f"/r/{ROOM}")
        self.page.get_by_label("Your name").fill(self.name)
        self.page.get_by_role("button", name="Join now").click()
        self.page.get_by_test_id("room").wait_for()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = self.page.evaluate(PAGE_STATS)
        return result

    def processes(self) -> list[psutil.Process]:
        """The browser process (its command line names this profile) and all its children."""
        for proc in psutil.process_iter(["cmdline"]):
            cmdline = proc.info["cmdline"] or []
            if any(str(self.profile) in part for part in cmdline) and not any(
                part.startswith("--type=") for part in cmdline
            ):
                return [proc, *proc.children(recursive=True)]
        return []

    def close(self) -> None:
        self.context.close()


def cpu_seconds(procs: list[psutil.Process]) -> float:
    total = 0.0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            times = proc.cpu_times()
            total += times.user + times.system
    return total


def everyone_decodes(people: list[Person], timeout: float = 120.0) -> float:
    """Wait until each page's frames from every other person rise; the seconds it took."""
    start = time.monotonic()
    names = [p.name for p in people]
    while True:
        before = [p.stats()["frames"] for p in people]
        people[0].page.wait_for_timeout(1000)
        after = [p.stats()["frames"] for p in people]
        ok = all(
            after[i].get(n, 0) > before[i].get(n, 0)
            for i, p in enumerate(people)
            for n in names
            if n != p.name
        )
        if ok:
            return time.monotonic() - start
        if time.monotonic() - start > timeout:
            raise RuntimeError(f"not everyone decodes everyone: {after}")


def measure_room(
    playwright: Any, url: str, count: int, seconds: float, scratch: Path
) -> dict[str, Any]:
    people: list[Person] = []
    try:
        for i in range(count):
            person = Person(playwright, url, f"p{i + 1}", scratch)
            people.append(person)
            person.join()
        connected = everyone_decodes(people)
        time.sleep(3)  # past the encoders' ramp-up
        procs = [p.processes() for p in people]
        sent0 = [(p.stats()["sent"], time.monotonic()) for p in people]
        cpu_started = time.monotonic()
        cpu0 = [cpu_seconds(ps) for ps in procs]
        time.sleep(seconds)
        cpu1 = [cpu_seconds(ps) for ps in procs]
        cpu_elapsed = time.monotonic() - cpu_started
        cpu = [(c1 - c0) / cpu_elapsed for c0, c1 in zip(cpu0, cpu1, strict=True)]
        sent = []
        for person, (before, at) in zip(people, sent0, strict=True):
            now = person.stats()["sent"]
            sent.append((now - before) * 8 / (time.monotonic() - at))
        return {"connected_s": connected, "cpu": cpu, "bps": sent}
    finally:
        for person in people:
            person.close()


CLIP_FPS = 30
# What Janus forwards to a small tile: a browser publishes 320×240 and 640×480 (simulcast),
# and a tile under 400 device px wide asks for the low layer (web/src/rtc/layers.ts). aiortc
# sends no simulcast, so the clip is the layer the watcher would get from browsers.
CLIP_SIZE = (320, 240)
CLIP_BITRATE = 300_000  # bit/s; a browser's low layer may use up to 400 kbit/s (web/src/rtc/sfu.ts)


def encoded_clip(seconds: int = 2) -> list[bytes]:
    """A VP8 clip encoded once here (``CLIP_SIZE``, 30 fps, a key frame each second, at a
    constant 300 kbit/s): moving stripes under fresh noise in every frame, so that the
    encoder spends its whole budget, as on a camera's picture. Its frames, in order."""
    codec = av.CodecContext.create("libvpx", "w")
    width, height = CLIP_SIZE
    codec.width, codec.height, codec.pix_fmt = width, height, "yuv420p"
    codec.time_base = Fraction(1, CLIP_FPS)
    codec.bit_rate, codec.gop_size = CLIP_BITRATE, CLIP_FPS
    rate = str(CLIP_BITRATE)
    codec.options = {
        "deadline": "realtime",
        "lag-in-frames": "0",
        "cpu-used": "8",
        "minrate": rate,
        "maxrate": rate,
        "bufsize": rate,
        "max-intra-rate": "300",  # a key frame at most 3 average frames, as a camera's
    }
    frames: list[bytes] = []
    for n in range(seconds * CLIP_FPS):
        frame = av.VideoFrame(width, height, "yuv420p")
        luma = frame.planes[0]
        stripes = bytes((x + 4 * n) % 256 for x in range(luma.line_size)) * height
        noise = os.urandom(len(stripes))
        luma.update(bytes((a >> 1) + (b >> 2) for a, b in zip(stripes, noise, strict=True)))
        for plane in frame.planes[1:]:
            plane.update(b"\x80" * plane.buffer_size)
        frame.pts = n
        frames += [bytes(packet) for packet in codec.encode(frame)]
    frames += [bytes(packet) for packet in codec.encode(None)]
    return frames


class ReplayedVideo(MediaStreamTrack):
    """A publisher's camera whose encoder is not on this machine, as a browser's is not: the
    frames of ``encoded_clip``, sent again and again in real time (aiortc packetizes an
    ``av.Packet`` without encoding it). Janus's room codec is VP8, its default."""

    kind = "video"

    def __init__(self, clip: list[bytes]) -> None:
        super().__init__()
        self.clip = clip
        self.sent = 0
        self.started = 0.0

    async def recv(self) -> av.Packet:
        """The next frame, when it is due; a frame more than one late is skipped (as a camera
        would have dropped it), not sent in a burst with the others."""
        if self.sent == 0:
            self.started = time.monotonic()
        else:
            due = int((time.monotonic() - self.started) * CLIP_FPS)
            self.sent = max(self.sent, due)
            await asyncio.sleep(max(0.0, self.started + self.sent / CLIP_FPS - time.monotonic()))
        packet = av.Packet(self.clip[self.sent % len(self.clip)])
        packet.pts, packet.time_base = self.sent * 90_000 // CLIP_FPS, Fraction(1, 90_000)
        self.sent += 1
        return packet


def largest_room(
    playwright: Any, url: str, running: JanusProcess, args: argparse.Namespace, scratch: Path
) -> list[tuple[int, float, float]]:
    """(publishers, lowest fps, median fps) per step, until the room no longer holds."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(120)

    ws_url = url.replace("https", "wss", 1) + "/ws"
    publishers: list[SfuMember] = []
    clip = encoded_clip()
    if not args.encode:
        kbps = sum(map(len, clip)) * 8 * CLIP_FPS / len(clip) / 1000
        print(f"  the clip: {CLIP_SIZE[0]}x{CLIP_SIZE[1]}, {len(clip)} frames, {kbps:.0f} kbit/s")
    watcher = Person(playwright, url, "watcher", scratch)
    results = []
    try:
        watcher.join()

        async def add(n: int) -> SfuMember:
            context = ssl.create_default_context()
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
            member = await SfuMember.greeted(ws_url, f"py{n}", receive=False, ssl=context)
            await member.join(ROOM)
            await member.publish(tone=True, video=None if args.encode else ReplayedVideo(clip))
            return member

        while len(publishers) < args.max_publishers:
            for _ in range(2):
                publishers.append(run(add(len(publishers) + 1)))
            names = [m.name for m in publishers]
            deadline = time.monotonic() + 30
            while not all(watcher.stats()["frames"].get(n, 0) > 0 for n in names):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            time.sleep(3)
            before = watcher.stats()["frames"]
            started = time.monotonic()
            time.sleep(args.seconds)
            after = watcher.stats()["frames"]
            elapsed = time.monotonic() - started
            fps = [(after.get(n, 0) - before.get(n, 0)) / elapsed for n in names]
            results.append((len(publishers), min(fps), statistics.median(fps)))
            print(
                f"  {len(publishers):2d} publishers: lowest {min(fps):5.1f} fps, "
                f"median {statistics.median(fps):5.1f} fps, "
                f"{sum(f < args.min_fps for f in fps)} under {args.min_fps:g} fps",
                flush=True,
            )
            if min(fps) < args.min_fps:
                break
    finally:
        watcher.close()
        for member in publishers:
            run(member.close())
        loop.call_soon_threadsafe(loop.stop)
    return results


def report(rows: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\n{args.people} people, {args.seconds:.0f} s, per browser (mean, max):")
    print(f"{'':6} {'all connected':>14} {'CPU s/s':>16} {'outbound kbit/s':>20}")
    for mode, row in rows.items():
        cpu, bps = row["cpu"], [b / 1000 for b in row["bps"]]
        print(
            f"{mode:6} {row['connected_s']:12.1f} s "
            f"{statistics.mean(cpu):7.2f} {max(cpu):7.2f} "
            f"{statistics.mean(bps):9.0f} {max(bps):9.0f}"
        )
    for mode, row in rows.items():
        print(f"{mode}: all {args.people} browsers together {sum(row['cpu']):.2f} CPU s/s")
    print(json.dumps(rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-publishers", type=int, default=20)
    parser.add_argument("--min-fps", type=float, default=15.0)
    parser.add_argument(
        "--encode",
        action="store_true",
        help="publishers encode their video here (aiortc), instead of sending a clip encoded once",
    )
    parser.add_argument("--skip-mesh", action="store_true")
    parser.add_argument("--skip-largest", action="store_true")
    parser.add_argument("--skip-people", action="store_true", help="only the largest room")
    args = parser.parse_args()
    version = subprocess.run(
        [str(CHROMIUM), "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(describe(version))
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright:
        scratch = Path(tmp)
        rows: dict[str, dict[str, Any]] = {}
        with running_janus(scratch / "janus", media_ports=2001) as running:
            if not (args.skip_mesh or args.skip_people):
                with salon(scratch / "mesh", {}) as url:
                    rows["mesh"] = measure_room(playwright, url, args.people, args.seconds, scratch)
            if not args.skip_people:
                with salon(scratch / "sfu", sfu_env(running, 1)) as url:
                    rows["sfu"] = measure_room(playwright, url, args.people, args.seconds, scratch)
            if rows:
                report(rows, args)
            if not args.skip_largest:
                print("\nThe largest SFU room: one Chromium watching, Python publishers:")
                with salon(scratch / "largest", sfu_env(running, 1)) as url:
                    results = largest_room(playwright, url, running, args, scratch)
                held = [n for n, low, _ in results if low >= args.min_fps]
                print(
                    f"largest room that holds (every stream >= {args.min_fps:.0f} fps): "
                    f"{max(held) if held else 0} publishers + 1 browser"
                )


if __name__ == "__main__":
    main()
