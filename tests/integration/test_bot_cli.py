"""``salon bot`` on the command line against the real server: the recorder's files, and the
clear refusals (exit 2, one line) of every bot.

Two SDK clients publish aiortc tracks (a moving test pattern and a 500 Hz tone) in a room;
``python -m salon bot record`` runs as a child process, as the server runs it (the link on
stdin). What a bot does with the tracks it receives is checked with the bot in this process,
where aiortc's queues can be looked at.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.audio.frame import AudioFrame
from av.video.frame import VideoFrame

from salon.bots import Bot, BotError, Target, run_bot
from salon.bots.command import read_link
from salon.bots.echo import EchoBot
from salon.bots.forward import ForwardTrack, Tap
from salon.bots.play import PlayBot
from salon.bots.record import RecorderBot, file_name, safe_name
from salon.bots.source import FileError, FileSource
from salon.bots.webm import QUEUE_VIDEO_FRAMES, ParticipantFile
from salon.cli import main
from salon.client import Client, Peer, ServerError
from salon.protocol.messages import CallEnded, MemberJoined
from tests.e2e.test_bots import make_clip
from tests.integration.server import RunningServer, running_server

AUDIO_RATE = 48_000
SAMPLES = 960  # 20 ms
FPS = 15
SIZE = (320, 240)


class ToneTrack(MediaStreamTrack):
    """A 500 Hz tone in real time: 20 ms frames of 48 kHz stereo."""

    kind = "audio"

    def __init__(self) -> None:
        super().__init__()
        wave = bytearray()
        for i in range(SAMPLES):  # 500 Hz: exactly 10 periods in 20 ms
            value = round(6000 * math.sin(2 * math.pi * 500 * i / AUDIO_RATE))
            wave += value.to_bytes(2, "little", signed=True) * 2
        self._wave = bytes(wave)
        self._start: float | None = None
        self._sent = 0

    async def recv(self) -> AudioFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._sent / AUDIO_RATE - time.monotonic()))
        frame = AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
        frame.planes[0].update(self._wave)
        frame.sample_rate = AUDIO_RATE
        frame.pts, frame.time_base = self._sent, Fraction(1, AUDIO_RATE)
        self._sent += SAMPLES
        return frame


class PatternTrack(MediaStreamTrack):
    """Small frames whose brightness changes every frame, at 15 frames a second."""

    kind = "video"

    def __init__(self) -> None:
        super().__init__()
        self._start: float | None = None
        self._count = 0

    async def recv(self) -> VideoFrame:
        if self._start is None:
            self._start = time.monotonic()
        await asyncio.sleep(max(0.0, self._start + self._count / FPS - time.monotonic()))
        frame = VideoFrame(*SIZE, "yuv420p")
        for index, plane in enumerate(frame.planes):
            plane.update(bytes([(self._count * 7 + index * 90) % 256]) * plane.buffer_size)
        frame.pts, frame.time_base = self._count, Fraction(1, FPS)
        self._count += 1
        return frame


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RunningServer]:
    with running_server(tmp_path / "data") as running:
        yield running


@pytest.fixture
async def publisher(server: RunningServer) -> AsyncIterator[Callable[..., Any]]:
    """``await publisher("alice", room)``: an SDK client in ``room`` sending a tone and a
    test pattern; closed after the test."""
    clients: list[Client] = []

    async def make(name: str, room: str) -> Client:
        client = Client(server.base_url, name, ssl=server.ssl_context)
        clients.append(client)
        await client.connect()
        client.add_track(ToneTrack())
        client.add_track(PatternTrack())
        await client.set_media(mic=True, camera=True)
        await client.join(room)
        return client

    yield make
    for client in clients:
        await client.close()


def bot_command(server: RunningServer, *args: str) -> list[str]:
    cafile = str(server.settings.data_dir / "tls" / "cert.pem")
    return [sys.executable, "-m", "salon", "bot", *args, "--cafile", cafile]


@contextlib.contextmanager
def bot_process(
    server: RunningServer, log: Path, *args: str, stdin: str | None = None
) -> Iterator[BotProcess]:
    """``python -m salon bot ARGS`` with its stderr in ``log``; killed if still running.
    With ``stdin``, that line is written to its stdin, a pipe kept open (as the server
    does with LINK ``-``) until :meth:`BotProcess.close_stdin`."""
    with log.open("wb") as stderr:
        pipe = subprocess.PIPE if stdin is not None else None
        proc = subprocess.Popen(bot_command(server, *args), stdin=pipe, stderr=stderr)
        try:
            if proc.stdin is not None:
                proc.stdin.write(f"{stdin}\n".encode())
                proc.stdin.flush()
            yield BotProcess(proc, log)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            if proc.stdin is not None:
                proc.stdin.close()


@dataclass
class BotProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def close_stdin(self) -> None:
        """What the server's end of the pipe does when the server goes away."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    async def exit(self, timeout: float = 20) -> tuple[int, str]:
        """Wait for the bot to exit: its status and what it wrote on stderr."""
        code = await asyncio.to_thread(self.proc.wait, timeout)
        return code, self.log.read_text()


async def wait_until(condition: Callable[[], bool], what: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


def chat_text(out: Path) -> str:
    chat = out / "chat.jsonl"
    return chat.read_text() if chat.exists() else ""


def media_of(path: Path) -> tuple[float, int, int]:
    """(duration in seconds, video frames, audio samples) of a recorded file, as PyAV reads
    it: the container's duration, and every frame decoded."""
    with av.open(str(path)) as container:
        assert container.duration is not None, f"{path.name} has no duration"
        duration = container.duration / 1_000_000
        video = sum(1 for _ in container.decode(video=0))
    with av.open(str(path)) as container:
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return duration, video, samples


async def test_recorder_records_each_member_and_the_chat_until_its_stdin_closes(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    room, out = "standup", tmp_path / "rec"
    alice = await publisher("alice", room)
    bob = await publisher("Bob Ünder", room)
    link = f"{server.base_url}/r/{room}"
    # As the server runs it: the link (a one-use invitation in it) on stdin, never in argv.
    args = ("record", "-", "--out", str(out))
    with bot_process(server, tmp_path / "bot.log", *args, stdin=link) as bot:
        joined = await alice.wait_for(
            MemberJoined, lambda m: m.member.name == "Recorder", timeout=20
        )
        assert joined.member.media.recording is True  # everyone is told (protocol v2)
        # A participant's recording starts with the first frame the recorder gets: just
        # after their connection to it is up (the file itself appears with its first
        # cluster of media, a moment later).
        publishers = {f"alice-{alice.id}.webm": alice, f"Bob_Under-{bob.id}.webm": bob}
        names = set(publishers)
        connected: dict[str, float] = {}

        def both_connected() -> bool:
            for name, client in publishers.items():
                peer = client.peers.get(joined.member.id)
                if peer is not None and peer.pc.connectionState == "connected":
                    connected.setdefault(name, time.monotonic())
            return len(connected) == len(names)

        await wait_until(both_connected, "both members are connected to the recorder")
        await wait_until(lambda: all((out / n).exists() for n in names), "the files appear")
        await alice.chat("hello from alice")
        await bob.chat('Bob here, {"quoted"} ✓')
        await asyncio.sleep(5)  # the recording itself: ~5 s of media
        bot.close_stdin()  # the parent is gone: the recorder stops as on SIGTERM
        stopped = time.monotonic()
        code, stderr = await bot.exit()
    assert code == 0, stderr
    assert "stdin closed" in stderr
    assert sorted(p.name for p in out.iterdir()) == sorted([*names, "chat.jsonl"])
    for name in sorted(names):
        duration, video, samples = media_of(out / name)
        recorded = stopped - connected[name]
        print(f"{name}: {duration:.3f} s of {recorded:.3f} s, {video} frames, {samples} samples")
        assert abs(duration - recorded) < 1.0, (name, duration, recorded)
        # Most of what was sent (a busy machine drops some frames on the way, not half).
        assert video > FPS * recorded / 2, (name, video)
        assert samples > AUDIO_RATE * recorded / 2, (name, samples)
    lines = [json.loads(line) for line in (out / "chat.jsonl").read_text().splitlines()]
    assert [(e["from"], e["name"], e["text"]) for e in lines] == [
        (alice.id, "alice", "hello from alice"),
        (bob.id, "Bob Ünder", 'Bob here, {"quoted"} ✓'),
    ]
    assert lines[1]["seq"] == lines[0]["seq"] + 1 and lines[0]["ts"] > 0


async def test_recorder_stops_by_itself_when_the_room_empties(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "rec"
    alice = await publisher("alice", "emptying")
    link = f"{server.base_url}/r/emptying"
    with bot_process(server, tmp_path / "bot.log", "record", link, "--out", str(out)) as bot:
        await wait_until(lambda: any(out.glob("*.webm")), "the file is created")
        await alice.leave()
        code, stderr = await bot.exit()
    assert code == 0, stderr
    assert "everyone left" in stderr
    [path] = out.glob("*.webm")
    duration, video, samples = media_of(path)
    assert duration > 0 and video > 0 and samples > 0


async def test_recorder_stops_cleanly_at_its_size_limit(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "rec"
    await publisher("alice", "limited")
    limit = 30_000
    args = ("record", f"{server.base_url}/r/limited", "--out", str(out), "--max-bytes", "30000")
    with bot_process(server, tmp_path / "bot.log", *args) as bot:
        code, stderr = await bot.exit(timeout=30)
    assert code == 0, stderr
    assert "size limit" in stderr
    [path] = out.glob("*.webm")
    assert path.stat().st_size > limit - 5_000  # it stopped near the limit, not at once
    duration, video, samples = media_of(path)
    assert duration > 0 and video > 0 and samples > 0


async def test_sigterm_while_the_recorder_negotiates_stops_it_at_once(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    out = tmp_path / "rec"
    alice = await publisher("alice", "hurried")
    args = ("record", f"{server.base_url}/r/hurried", "--out", str(out))
    with bot_process(server, tmp_path / "bot.log", *args) as bot:
        await alice.wait_for(MemberJoined, lambda m: m.member.name == "Recorder", timeout=20)
        bot.proc.send_signal(signal.SIGTERM)  # the pair is negotiating, media may be arriving
        asked = time.monotonic()
        code, stderr = await bot.exit(timeout=15)
        took = time.monotonic() - asked
    assert code == 0, stderr
    assert took < 5, (took, stderr)
    for path in out.glob("*.webm"):  # a file exists only with media in it, and opens
        _duration, video, samples = media_of(path)
        assert video + samples > 0, path.name


# The tracks a bot receives: every one read, or stopped.


@contextlib.asynccontextmanager
async def seated(bot: Bot, server: RunningServer, room: str) -> AsyncIterator[Client]:
    """``bot`` running in this process in ``room``; its client while it runs, then stopped."""
    target = Target.parse(f"{server.base_url}/r/{room}")
    task = asyncio.ensure_future(run_bot(bot, target, ssl=server.ssl_context))

    def in_room() -> bool:
        return task.done() or (hasattr(bot, "client") and bot.client.room is not None)

    await wait_until(in_room, "the bot is in the room")
    try:
        yield bot.client
    finally:
        bot.stop("the test is over")
        await asyncio.wait_for(task, 20)


def most_queued(client: Client) -> int:
    """The most decoded frames waiting in any remote track of ``client`` (aiortc's remote
    track queues every frame it decodes, without bound, until someone reads it)."""
    sizes = [
        getattr(track, "_queue").qsize()  # noqa: B009 - aiortc's own, not typed
        for peer in client.peers.values()
        for track in peer.remote_tracks
    ]
    return max(sizes, default=0)


async def share_a_second_video(sender: Client, bot: Client) -> Peer:
    """``sender`` sends the bot a second video beside its camera (a screen share); returns the
    bot's peer toward ``sender`` once the track arrived."""
    await wait_until(lambda: bot.id in sender.peers, "the pair exists")
    sender.peers[bot.id].add_track(PatternTrack())

    def three() -> bool:
        peer = bot.peers.get(str(sender.id))
        return peer is not None and len(peer.remote_tracks) == 3

    await wait_until(three, "the bot receives the second video")
    return bot.peers[str(sender.id)]


async def watch_queues(client: Client, seconds: float) -> int:
    """The most frames queued in any remote track of ``client`` over ``seconds``."""
    most, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline:
        most = max(most, most_queued(client))
        await asyncio.sleep(0.1)
    return most


async def test_recorder_reads_only_what_it_records_and_never_overwrites_a_file(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    room, out = "screens", tmp_path / "rec"
    alice = await publisher("alice", room)
    bob = await publisher("bob", room)
    first = out / file_name("alice", str(alice.id))
    async with seated(RecorderBot(out), server, room) as recorder:
        await wait_until(lambda: len(list(out.glob("*.webm"))) == 2, "both files are created")
        peer = await share_a_second_video(alice, recorder)
        # 3 s of a 15 frames/s video nobody records: 45 frames queued, were it still decoded.
        assert await watch_queues(recorder, 3.0) <= 5
        assert [t.readyState for t in peer.remote_tracks if t.kind == "video"][1] == "ended"
        # alice leaves and comes back with the same member id: her first file is kept whole
        # and a second one begins.
        await alice.leave()
        await wait_until(lambda: alice.id not in recorder.peers, "the recorder lets alice go")
        await alice.join(room)
        second = out / f"alice-{alice.id}-2.webm"
        await wait_until(second.exists, "alice's second file is created", timeout=30)
        await asyncio.sleep(1)  # media time: a second of alice in her second file
    names = sorted(p.name for p in out.glob("*.webm"))
    assert names == sorted([first.name, second.name, file_name("bob", str(bob.id))])
    for name in names:
        _duration, video, samples = media_of(out / name)
        assert video > 0 and samples > 0, name
    assert media_of(first)[0] > 3.0  # what came before the rejoin survived it


@pytest.mark.parametrize("kind", ["echo", "play"])
async def test_echo_and_play_read_or_stop_every_track_they_receive(
    kind: str, server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    room = f"tracks-{kind}"
    alice = await publisher("alice", room)
    if kind == "play":
        clip = tmp_path / "clip.webm"
        make_clip(clip, seconds=1.0)
        bot: Bot = PlayBot(clip, loop=True)  # it receives nothing: every track is stopped
    else:
        bot = EchoBot()  # it reads the camera and the microphone, and stops the second video
    async with seated(bot, server, room) as client:
        await share_a_second_video(alice, client)
        assert await watch_queues(client, 3.0) <= 5


async def call_when_online(caller: Client, name: str) -> str:
    """Call ``name`` as soon as it is online (a bot takes a moment to start)."""
    deadline = time.monotonic() + 20
    while True:
        try:
            return await caller.call(name)
        except ServerError as exc:
            if exc.code != "not_online" or time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_play_and_record_bots_answer_direct_calls(
    server: RunningServer, tmp_path: Path
) -> None:
    clip, out = tmp_path / "clip.webm", tmp_path / "rec"
    make_clip(clip, seconds=1.5)
    caller = Client(server.base_url, "carol", ssl=server.ssl_context)
    caller.add_track(ToneTrack())
    caller.add_track(PatternTrack())
    frames: list[float] = []

    async def count(track: MediaStreamTrack) -> None:
        with contextlib.suppress(MediaStreamError):
            while True:
                await track.recv()
                frames.append(time.monotonic())

    readers: set[asyncio.Task[None]] = set()
    caller.on_track(lambda _peer, track: readers.add(asyncio.ensure_future(count(track))))
    closed: list[str] = []
    caller.on_peer_closed(lambda peer: closed.append(peer.id))
    await caller.connect()
    answering = ("--server", server.base_url, "--answer")
    with (
        bot_process(server, tmp_path / "play.log", "play", *answering, "dj", str(clip)) as dj,
        bot_process(
            server, tmp_path / "rec.log", "record", *answering, "rec", "--out", str(out)
        ) as rec,
    ):
        try:
            # The play bot plays the clip to the caller, then hangs up by itself.
            call = await call_when_online(caller, "dj")
            ended = await caller.wait_for(CallEnded, lambda m: m.call == call, timeout=20)
            assert ended.reason == "hangup"
            assert len(frames) > 30, len(frames)  # video and audio frames decoded
            # The recorder records the caller and the chat until the caller hangs up.
            await call_when_online(caller, "rec")
            await wait_until(lambda: any(out.glob("*.webm")), "the caller's file is created")
            await caller.chat("for the record")
            await wait_until(
                lambda: "for the record" in chat_text(out), "the recorder writes the chat"
            )
            await asyncio.sleep(2)  # media time: the file must hold more than 1.5 s (below)
            await caller.hang_up()
            # Closing the client while it still closes that call's peer would cut it short.
            await wait_until(lambda: len(closed) == 2, "both calls' peers are closed")
        finally:
            await caller.close()
            for task in readers:
                task.cancel()
        for bot in (dj, rec):
            bot.proc.send_signal(signal.SIGTERM)
            code, stderr = await bot.exit()
            assert code == 0, stderr
    [path] = out.glob("carol-*.webm")
    duration, video, samples = media_of(path)
    assert duration > 1.5 and video > 15 and samples > AUDIO_RATE, (duration, video, samples)
    [entry] = [json.loads(line) for line in (out / "chat.jsonl").read_text().splitlines()]
    assert (entry["name"], entry["text"]) == ("carol", "for the record")


def run_cli(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "salon", "bot", *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, **(env or {})},
        input=stdin,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.returncode, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["echo", "ftp://example.com/r/x"], "not a meeting link"),
        (["echo", "https://example.com/room/x"], "path is not /r/ROOM"),
        (["echo", "https://example.com"], "names no room"),
        (["echo", "https://example.com/r/a", "--answer", "bot"], "not a room"),
        (["echo"], "give a meeting link"),
        (["play", "https://example.com/r/a", "/nonexistent/clip.webm"], "cannot read"),
        (["record", "https://example.com/r/a", "--out", "/proc/no/such"], "cannot write"),
        (["echo", "https://example.com/r/a", "--cafile", "/nonexistent.pem"], "--cafile"),
        (
            ["record", "https://example.com/r/a", "--out", "x", "--video-size", "640"],
            "WIDTHxHEIGHT",
        ),
        (["record", "https://h/r/a", "--out", "x", "--video-size", "3840x2160"], "at most"),
        (["record", "https://h/r/a", "--out", "x", "--video-size", "641x480"], "even"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(
    args: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # Checked before anything connects, so in this process.
    assert main(["bot", *args]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and says in lines[0], lines


def test_unplayable_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = tmp_path / "notes.webm"
    text.write_text("not a video")
    assert main(["bot", "play", "https://h/r/a", str(text)]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_missing_aiortc_says_what_to_install() -> None:
    code = "import sys; sys.modules['aiortc'] = None; from salon.cli import main; " + (
        "raise SystemExit(main(['bot', 'echo', 'https://h/r/a']))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30
    )
    assert "install salon[client]" in one_line_error(result)


def test_link_on_stdin_must_come_as_one_line_in_time(tmp_path: Path) -> None:
    # The end of stdin before a line (as /dev/null gives): exit 2, one line, for every bot.
    out = str(tmp_path / "rec")
    for bot in (["echo", "-"], ["record", "-", "--out", out], ["play", "-", "clip.webm"]):
        ended = run_cli(*bot, stdin="")
        assert "stdin ended before a meeting link" in one_line_error(ended), bot
    empty = run_cli("echo", "-", stdin="\n")
    assert "empty" in one_line_error(empty)
    # No line within the time allowed (10 s on the command line; shorter here).
    for written, link in ((b"https://h/r/a", None), (b"https://h/r/a#invite=T\nmore\n", True)):
        reading, writing = os.pipe()
        try:
            os.write(writing, written)
            if link is None:  # ... no end of line
                with pytest.raises(BotError, match="no meeting link on stdin within"):
                    read_link(reading, timeout=0.3)
            else:
                assert read_link(reading, timeout=0.3) == "https://h/r/a#invite=T"
        finally:
            os.close(reading)
            os.close(writing)


async def test_echo_and_play_take_their_link_on_stdin_and_stop_when_it_closes(
    server: RunningServer, publisher: Callable[..., Any], tmp_path: Path
) -> None:
    alice = await publisher("alice", "piped")
    clip = tmp_path / "clip.webm"
    make_clip(clip, seconds=1.0)
    link = f"{server.base_url}/r/piped"
    with (
        bot_process(server, tmp_path / "echo.log", "echo", "-", stdin=link) as echo,
        bot_process(
            server, tmp_path / "play.log", "play", "-", str(clip), "--loop", stdin=link
        ) as play,
    ):
        names = {"Echo", "Player"}
        await wait_until(lambda: {m.name for m in alice.members.values()} == names, "both join")
        logs = []
        for bot in (echo, play):
            bot.close_stdin()
            code, stderr = await bot.exit(timeout=10)
            assert code == 0, stderr
            assert "stdin closed" in stderr
            logs.append(stderr)
    await wait_until(lambda: not alice.members, f"both have left: {alice.members} {logs}")


def test_refused_join_and_unreachable_server_exit_2(server: RunningServer) -> None:
    cafile = str(server.settings.data_dir / "tls" / "cert.pem")
    # Rooms named call-… belong to direct calls: the server refuses the join.
    refused = run_cli("echo", f"{server.base_url}/r/call-none", "--cafile", cafile)
    assert "cannot join room call-none: no_such_room" in one_line_error(refused)
    nobody = run_cli("echo", "https://127.0.0.1:9/r/a", "--insecure")
    assert "cannot connect" in one_line_error(nobody)
    # A certificate the bot does not trust is refused, never ignored.
    untrusted = run_cli("echo", f"{server.base_url}/r/a")
    assert "cannot connect" in one_line_error(untrusted)


# The bots' parts, in this process.


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("Ann", "Ann"),
        ("Zoë O'Brien", "Zoe_O_Brien"),
        ("  -日本-  ", "member"),
        ("", "member"),
        ("a" * 40, "a" * 32),
        ("../../etc/passwd", "etc_passwd"),
    ],
)
def test_safe_names(name: str, safe: str) -> None:
    assert safe_name(name) == safe
    assert file_name(name, "ab-C_9/x") == f"{safe}-ab-C_9_x.webm"


async def test_forward_track_keeps_timestamps_rising_across_a_switch() -> None:
    first, second = PatternTrack(), PatternTrack()
    forward = ForwardTrack("video", first)
    stamps = [(await forward.recv()).pts or 0 for _ in range(3)]
    forward.switch(second)  # a replaced connection: its track starts again at 0
    stamps += [(await forward.recv()).pts or 0 for _ in range(3)]
    assert first.readyState == "ended"
    assert stamps == sorted(set(stamps)) and stamps[0] == 0, stamps
    forward.stop()
    assert second.readyState == "ended"


async def test_file_source_loops_in_real_time_with_rising_timestamps(tmp_path: Path) -> None:
    clip = tmp_path / "clip.webm"
    make_clip(clip, seconds=1.0)
    source = FileSource(clip, loop=True)
    video, audio = source.subscribe("video"), source.subscribe("audio")
    source.start()
    started = time.monotonic()
    stamps: list[float] = []
    while time.monotonic() - started < 2.5:  # the clip plays two and a half times
        frame = await video.recv()
        stamps.append(float(frame.time or 0.0) if isinstance(frame, VideoFrame) else -1.0)
    await source.stop()
    elapsed = time.monotonic() - started
    assert stamps == sorted(stamps) and stamps[-1] > 2.0, stamps
    assert stamps[-1] - elapsed < 0.5  # never ahead of the clock
    assert 30 <= len(stamps) <= 45, len(stamps)  # 15 frames a second, looped
    sound = await audio.recv()
    assert isinstance(sound, AudioFrame) and sound.samples == 960


def test_file_source_refuses_what_it_cannot_play(tmp_path: Path) -> None:
    empty = tmp_path / "empty.webm"
    empty.write_bytes(b"")
    with pytest.raises(FileError):
        FileSource(empty)
    with pytest.raises(FileError):
        FileSource(tmp_path / "missing.mp4")


def picture(width: int, height: int, luma: int = 200) -> VideoFrame:
    frame = VideoFrame(width, height, "yuv420p")
    for index, plane in enumerate(frame.planes):
        plane.update(bytes([luma if index == 0 else 128]) * plane.buffer_size)
    return frame


def sound() -> AudioFrame:
    frame = AudioFrame(format="s16", layout="stereo", samples=SAMPLES)
    frame.planes[0].update(bytes(SAMPLES * 4))
    frame.sample_rate = AUDIO_RATE
    return frame


def feed(file: ParticipantFile, frames: list[VideoFrame], fps: float = 30) -> None:
    """Each frame with 20 ms of sound, at ``fps`` (arrival times are the file's clock)."""
    for frame in frames:
        file.put(frame)
        file.put(sound())
        time.sleep(1 / fps)


def test_recording_has_one_video_size_whatever_the_sender_sends(tmp_path: Path) -> None:
    path = tmp_path / "ann-x1.webm"
    recording = ParticipantFile(path)  # 640×480 by default
    # Chrome starts small while its bandwidth estimate ramps up; then a wide picture; then
    # one far too large (16383×16383 would need 400 MB; this shows the same).
    feed(recording, [picture(160, 120)] * 3 + [picture(320, 180)] * 6 + [picture(4000, 4000)])
    recording.close()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (640, 480)
        pictures = list(container.decode(video=0))
    assert len(pictures) == 10 and all((p.width, p.height) == (640, 480) for p in pictures)
    # 320×180 fills the width: 360 lines of picture between two black bars of 60 lines.
    wide = bytes(pictures[5].planes[0])
    stride = pictures[5].planes[0].line_size
    assert wide[10 * stride + 320] < 30  # a bar (black: luma 16)
    assert wide[240 * stride + 320] > 150  # the picture (luma 200)
    assert wide[470 * stride + 320] < 30


def test_a_burst_the_encoder_cannot_take_costs_frames_not_memory_or_time(
    tmp_path: Path,
) -> None:
    recording = ParticipantFile(tmp_path / "burst.webm", size=(1280, 720))
    sent = 10 * QUEUE_VIDEO_FRAMES
    frame = picture(1280, 720)
    accepted = sum(recording.put(frame) for _ in range(sent))  # far faster than it encodes
    assert accepted < sent / 2  # the queue is full: the rest is dropped, and counted
    asked = time.monotonic()
    recording.close()  # what is queued is written; nothing more
    assert time.monotonic() - asked < 3
    stats = recording.stats
    assert stats.video_frames + stats.dropped == sent and stats.dropped >= sent / 2
    assert recording.written is not None
    assert media_of(recording.written)[1] == stats.video_frames


def test_a_participant_file_is_never_replaced(tmp_path: Path) -> None:
    path = tmp_path / "ann-x1.webm"
    for frames in (8, 4, 2):  # three stays of the same member
        recording = ParticipantFile(path)
        feed(recording, [picture(640, 480)] * frames)
        recording.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "ann-x1-2.webm",
        "ann-x1-3.webm",
        "ann-x1.webm",
    ]
    assert media_of(path)[1] == 8  # the first stay, whole
    assert media_of(tmp_path / "ann-x1-3.webm")[1] == 2
    nothing = ParticipantFile(tmp_path / "bob-x2.webm")  # no frame came: no file
    nothing.close()
    assert nothing.written is None and not (tmp_path / "bob-x2.webm").exists()


KILLED_WRITER = """
import os, sys, time
from pathlib import Path
import av
from salon.bots.webm import ParticipantFile
recording = ParticipantFile(Path(sys.argv[1]))
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    frame = av.VideoFrame(320, 240, "yuv420p")
    frame.planes[0].update(bytes([int(time.monotonic() * 100) % 256]) * frame.planes[0].buffer_size)
    recording.put(frame)
    time.sleep(1 / 30)
os._exit(9)  # killed: nothing is closed
"""


@pytest.mark.parametrize("seconds", [0.1, 0.4, 1.2])
def test_a_killed_recorder_leaves_no_file_that_does_not_open(
    tmp_path: Path, seconds: float
) -> None:
    path = tmp_path / "ann-x1.webm"
    run = [sys.executable, "-c", KILLED_WRITER, str(path), str(seconds)]
    assert subprocess.run(run, timeout=30).returncode == 9
    if path.exists():  # it is created with its first cluster of media, never before
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0


async def test_a_tap_reads_its_track_whether_or_not_it_is_read() -> None:
    source = PatternTrack()
    tap = Tap(source, keep=2)
    # Nobody reads the tap: it reads the source all the same, keeping the newest 2.
    await wait_until(lambda: tap.dropped >= 6, "the unread tap drops frames", timeout=5)
    newest = await tap.recv()
    assert isinstance(newest, VideoFrame) and (newest.pts or 0) >= 6
    tap.stop()  # it goes on reading (and dropping) until the source ends
    await wait_until(
        lambda: source._count > (newest.pts or 0) + 2, "the stopped tap reads on", timeout=5
    )
    source.stop()
