"""The bots with real Chromium: a person sees their own camera come back from the echo bot, in
a room and in a direct call placed to the bot by name, and decodes a file the play bot plays.

Each bot runs as ``python -m salon bot …`` (a child process, as a person would run it) with
``--insecure`` against the test server's self-signed certificate; media is proven by the
page's ``getStats()`` numbers rising on the bot's tile.
"""

from __future__ import annotations

import contextlib
import math
import signal
import subprocess
import sys
from collections.abc import Iterator
from fractions import Fraction
from pathlib import Path

import pytest

from tests.e2e.conftest import Person, join_room, new_room, screenshot, tile, wait_for_media
from tests.e2e.test_call import dial, go_online
from tests.e2e.test_room import send_chat

pytestmark = pytest.mark.e2e


@contextlib.contextmanager
def bot(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[bytes]]:
    """``salon bot ARGS --insecure`` for the test; after it, SIGTERM must stop it cleanly."""
    log_path = tmp_path / f"bot-{args[0]}.log"
    with log_path.open("wb") as log:
        command = [sys.executable, "-m", "salon", "bot", *args, "--insecure"]
        proc = subprocess.Popen(command, stderr=log)
        try:
            yield proc
            assert proc.poll() is None, f"the bot ended early: {log_path.read_text()}"
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
            assert code == 0, log_path.read_text()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            print(log_path.read_text())  # shown when the test fails


def test_echo_bot_sends_a_person_their_own_camera_and_answers_chat(
    person: Person, server: str, tmp_path: Path
) -> None:
    page = person()
    room = new_room(page)
    with bot(tmp_path, "echo", f"{server}/r/{room}"):
        join_room(page, room, "ann")
        tile(page, "Echo").wait_for()
        # The page decodes video and audio from the bot: its own fake camera and microphone.
        wait_for_media(page, ["Echo"])
        send_chat(page, "can you hear me?")
        page.get_by_text("echo: can you hear me?").wait_for()
        screenshot(page, "echo-bot")


def test_echo_bot_answers_a_call_placed_by_name(
    person: Person, server: str, tmp_path: Path
) -> None:
    with bot(tmp_path, "echo", "--server", server, "--answer", "echo-bot"):
        page = person()
        go_online(page, "caller")
        page.get_by_test_id("online").get_by_text("echo-bot").wait_for()
        dial(page, "echo-bot")
        page.get_by_test_id("room").wait_for()
        wait_for_media(page, ["echo-bot"])
        page.get_by_role("button", name="Hang up").click()
        page.get_by_test_id("call-status").get_by_text("You hung up").wait_for()


def make_clip(path: Path, seconds: float = 2.0) -> None:
    """A short WebM made with PyAV: 320×240 VP8 whose brightness changes, and a 440 Hz tone."""
    import av

    with av.open(str(path), "w", format="webm") as container:
        video = container.add_stream("libvpx", rate=15, options={"deadline": "realtime"})
        video.width, video.height, video.pix_fmt = 320, 240, "yuv420p"
        audio = container.add_stream("libopus", rate=48_000)
        audio.layout = "stereo"
        for i in range(int(seconds * 15)):
            frame = av.VideoFrame(320, 240, "yuv420p")
            for index, plane in enumerate(frame.planes):
                plane.update(bytes([(i * 8 + index * 80) % 256]) * plane.buffer_size)
            frame.pts, frame.time_base = i, Fraction(1, 15)
            container.mux(video.encode(frame))
        tone = b"".join(
            round(8000 * math.sin(2 * math.pi * 440 * n / 48_000)).to_bytes(
                2, "little", signed=True
            )
            * 2
            for n in range(48_000)
        )
        for second in range(math.ceil(seconds)):
            sound = av.AudioFrame(format="s16", layout="stereo", samples=48_000)
            sound.planes[0].update(tone)
            sound.sample_rate = 48_000
            sound.pts, sound.time_base = second * 48_000, Fraction(1, 48_000)
            container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))


def test_play_bot_plays_a_file_the_browser_decodes(
    person: Person, server: str, tmp_path: Path
) -> None:
    clip = tmp_path / "clip.webm"
    make_clip(clip)
    page = person()
    room = new_room(page)
    with bot(tmp_path, "play", f"{server}/r/{room}", str(clip), "--loop"):
        join_room(page, room, "ben")
        tile(page, "Player").wait_for()
        wait_for_media(page, ["Player"])  # video frames decoded and audio bytes, rising
