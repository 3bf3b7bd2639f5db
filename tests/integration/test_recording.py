"""Recording a meeting (docs/PROTOCOL.md §3.9) through the real server, real WebSocket clients
and the real recorder (``salon bot record``, a child process of the server): who hears what,
who may record, the limits, downloads with signed keys, and the retention sweep.

The members here are protocol clients without media; the recorder still joins, says
``recording`` in its media and writes the chat. Media in the files is proven by
tests/integration/test_bot_cli.py and tests/e2e/test_recording.py.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import signal
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from salon.core.recordings import DownloadKeys
from salon.server.keys import RESUME_KEY_FILE
from tests.integration.peer import Peer
from tests.integration.server import RunningServer, running_server
from tests.integration.test_drain import Served, serve

RECORDER_SECONDS = 30.0  # the recorder is a Python process that imports aiortc: give it time

pytestmark = pytest.mark.timeout(90)


async def greeted(server: RunningServer, name: str, versions: list[int]) -> Peer:
    peer = await Peer.connect(server)
    await peer.send(type="hello", versions=versions, name=name)
    peer.welcome = await peer.expect("welcome")
    assert peer.welcome["version"] == max(versions)
    peer.id, peer.name = peer.welcome["id"], peer.welcome["name"]
    return peer


async def until(
    peer: Peer, wanted: Callable[[dict[str, Any]], bool], timeout: float = RECORDER_SECONDS
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The first message ``wanted`` accepts, and every message before it."""
    before: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise AssertionError(f"{peer.name} never got it; got {[m['type'] for m in before]}")
        message = await peer.recv(left)
        if wanted(message):
            return message, before
        before.append(message)


def of_type(kind: str, **fields: Any) -> Callable[[dict[str, Any]], bool]:
    return lambda m: m["type"] == kind and all(m.get(k) == v for k, v in fields.items())


def recording_event(action: str) -> Callable[[dict[str, Any]], bool]:
    return of_type("room_event", action=action)


async def drained(peer: Peer) -> list[dict[str, Any]]:
    """Everything that reached ``peer`` so far: a pong marks the end."""
    ref = f"mark-{time.monotonic_ns()}"
    await peer.send(type="ping", ref=ref)
    _, before = await until(peer, of_type("pong", ref=ref), timeout=5)
    return before


def recorder_joined(message: dict[str, Any]) -> bool:
    return message["type"] == "member_joined" and message["member"]["media"].get("recording")


def ended(folder: Path) -> bool:
    return json.loads((folder / "recording.json").read_text())["ended"] is not None


async def eventually(condition: Callable[[], bool], timeout: float = RECORDER_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        await asyncio.sleep(0.1)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    with running_server(tmp_path) as running:
        yield running


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=server.base_url, verify=server.ssl_context) as client:
        yield client


# ------------------------------------------------------------------ a whole recording


async def test_a_host_records_and_everyone_sees_it_and_the_host_downloads(
    server: RunningServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    alice = await greeted(server, "alice", [1, 2])  # the host
    bob = await greeted(server, "bob", [1, 2])
    carol = await greeted(server, "carol", [1])  # an older client
    for peer in (alice, bob, carol):
        joined = await peer.join("r")
        for member in joined["members"]:
            assert "recording" not in member["media"]  # left out while false
    for peer in (alice, bob, carol):
        await drained(peer)

    await alice.send(type="record", on=True, ref="rec")

    started, _ = await until(alice, recording_event("recording_started"), 5)
    assert (started["by"], started["by_name"], started["target"]) == (alice.id, "alice", None)
    listed = await alice.expect("recordings")
    assert listed["room"] == "r"
    (running,) = listed["recordings"]
    assert running["ended"] is None
    folder = tmp_path / "recordings" / running["id"]
    assert json.loads((folder / "recording.json").read_text())["room"] == "r"

    joined, before = await until(bob, recorder_joined)
    assert [m["by"] for m in before if recording_event("recording_started")(m)] == [alice.id]
    recorder = joined["member"]["id"]
    assert joined["member"]["media"]["recording"] is True
    joined, before = await until(carol, recorder_joined)
    assert not [m for m in before if m["type"] in ("room_event", "recordings")]  # v1: nothing new
    await until(alice, recorder_joined)

    await bob.send(type="chat", text="hello, recorder")
    await until(alice, of_type("chat", text="hello, recorder"), 5)
    await eventually(lambda: "hello, recorder" in _read(folder / "chat.jsonl"))

    await alice.send(type="record", on=False)

    stopped, _ = await until(bob, recording_event("recording_stopped"), 5)
    assert stopped["by"] == alice.id
    left, _ = await until(carol, of_type("member_left", id=recorder))
    assert left["room"] == "r"
    final, before = await until(alice, lambda m: m["type"] == "recordings")
    assert [m["by"] for m in before if recording_event("recording_stopped")(m)] == [alice.id]
    (done,) = final["recordings"]
    assert done["id"] == running["id"]
    assert done["ended"] is not None and done["ended"] >= done["started"]
    chat = next(f for f in done["files"] if f["name"] == "chat.jsonl")
    assert done["bytes"] == sum(f["bytes"] for f in done["files"])
    assert not [m for m in await drained(bob) if m["type"] == "recordings"]  # hosts only
    assert not [m for m in await drained(carol) if m["type"] in ("room_event", "recordings")]

    got = await http.get(chat["url"])
    assert got.status_code == 200
    assert got.headers["content-disposition"] == 'attachment; filename="chat.jsonl"'
    line = json.loads(got.text.splitlines()[0])
    assert (line["from"], line["name"], line["text"]) == (bob.id, "bob", "hello, recorder")
    assert len(got.content) == chat["bytes"]

    path, key = chat["url"].split("?key=")
    expires, mac = key.split(".")
    forged = f"{expires}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}"
    assert (await http.get(f"{path}?key={forged}")).status_code == 403
    assert (await http.get(f"{path}?key={int(expires) + 1}.{mac}")).status_code == 403
    assert (await http.get(path)).status_code == 403
    assert (await http.get(f"{path}?key=%C2%B2.{mac}")).status_code == 403  # "²" is no int
    other = path.replace(running["id"], "0123456789abcdef")
    assert (await http.get(f"{other}?key={key}")).status_code == 403  # another's key
    secret = bytes.fromhex((tmp_path / RESUME_KEY_FILE).read_text().strip())
    unknown = DownloadKeys(secret).make("0123456789abcdef", "chat.jsonl", int(expires))
    assert (await http.get(f"{other}?key={unknown}")).status_code == 404

    for peer in (alice, bob, carol):
        await peer.close()


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


# ------------------------------------------------------------------ who may record


async def test_only_a_host_records_and_never_in_a_direct_call(server: RunningServer) -> None:
    alice = await greeted(server, "alice", [1, 2])
    bob = await greeted(server, "bob", [1, 2])
    old = await greeted(server, "old", [1])
    for peer in (alice, bob, old):
        await peer.join("r")
    for peer in (alice, bob, old):
        await drained(peer)

    await bob.send(type="record", on=True, ref=1)
    assert (await bob.error("not_host"))["ref"] == 1
    await old.send(type="record", on=True, ref=2)
    assert (await old.error("unknown_type"))["ref"] == 2  # not a message of version 1
    await old.send(type="media", mic=True, camera=False, screen=False, recording=True, ref=3)
    refused = await old.error("bad_message")
    assert (refused["message"], refused["ref"]) == ("recording: unknown field", 3)
    await old.send(type="join", room="s", media={"recording": True}, ref=4)
    assert (await old.error("bad_message"))["message"] == "media.recording: unknown field"
    assert await drained(alice) == []  # nobody heard of any of it

    caller = await greeted(server, "caller", [1, 2])
    callee = await Peer.connect(server)
    await callee.send(type="hello", versions=[1, 2], name="callee", reachable=True)
    await callee.expect("welcome")
    await caller.send(type="call", name="callee")
    incoming, _ = await until(callee, of_type("incoming_call"), 5)
    await callee.send(type="call_accept", call=incoming["call"])
    await until(caller, of_type("joined"), 5)
    await caller.send(type="record", on=True, ref="call")
    refused, _ = await until(caller, of_type("error"), 5)
    assert (refused["code"], refused["ref"]) == ("not_host", "call")

    for peer in (alice, bob, old, caller, callee):
        await peer.close()


# ------------------------------------------------------------------ limits and retention


def _fake_recording(root: Path, rid: str, *, started: int, size: int) -> Path:
    """A finished recording as the server leaves one (a file of ``size`` bytes)."""
    folder = root / "recordings" / rid
    folder.mkdir(parents=True)
    meta = {
        "id": rid,
        "room": "old",
        "meeting": "old@1",
        "started": started,
        "ended": started + 1000,
        "by": "x",
        "by_name": "x",
        "account": None,
    }
    (folder / "recording.json").write_text(json.dumps(meta))
    (folder / "someone-abc.webm").write_bytes(b"\0" * size)
    return folder


async def test_a_full_storage_or_recording_off_refuses_and_spawns_nothing(tmp_path: Path) -> None:
    now = int(time.time() * 1000)
    _fake_recording(tmp_path, "00000000000000aa", started=now, size=2 * 1024 * 1024)
    options = {"recordings": {"max_bytes": 2 * 1024 * 1024}}
    with running_server(tmp_path, options=options) as server:
        alice = await greeted(server, "alice", [2])
        await alice.join("r")
        await alice.send(type="record", on=True, ref="full")
        refused = await alice.error("recording_unavailable")
        assert refused["ref"] == "full"
        assert "storage" in refused["message"]
        assert await drained(alice) == []
        await alice.close()
    assert [p.name for p in (tmp_path / "recordings").iterdir()] == ["00000000000000aa"]

    with running_server(tmp_path / "off", options={"recordings": {"enabled": False}}) as server:
        alice = await greeted(server, "alice", [2])
        await alice.join("r")
        await alice.send(type="record", on=True)
        assert "turned off" in (await alice.error("recording_unavailable"))["message"]
        await alice.close()
    assert not (tmp_path / "off" / "recordings").exists()


async def test_the_sweep_deletes_old_recordings_and_a_recording_ends_with_its_meeting(
    tmp_path: Path,
) -> None:
    now = int(time.time() * 1000)
    old = _fake_recording(tmp_path, "00000000000000bb", started=now - 31 * 86_400_000, size=10)
    young = _fake_recording(tmp_path, "00000000000000cc", started=now - 29 * 86_400_000, size=10)
    with running_server(tmp_path) as server:
        await eventually(lambda: not old.exists(), timeout=10)
        assert young.exists()

        alice = await greeted(server, "alice", [2])
        await alice.join("r")
        await alice.send(type="record", on=True)
        await until(alice, recording_event("recording_started"), 5)
        running = (await alice.expect("recordings"))["recordings"][0]
        folder = tmp_path / "recordings" / running["id"]
        await until(alice, recorder_joined)
        await alice.send(type="chat", text="on the record")
        await eventually(lambda: "on the record" in _read(folder / "chat.jsonl"))
        await alice.close()  # the last person: the meeting ends, and its recording
        await eventually(lambda: ended(folder))


async def test_a_meeting_left_to_its_recorder_ends_and_the_next_comer_gets_nothing_of_it(
    server: RunningServer, tmp_path: Path
) -> None:
    """The security review's case: the host protects the room, records, chats and leaves,
    the last person leaves; whoever joins a moment later starts a new meeting (its host,
    seated past nothing), and hears nothing of the recorded one."""
    alice = await greeted(server, "alice", [2])
    bob = await greeted(server, "bob", [2])
    await alice.join("r")
    await bob.join("r")
    await alice.send(type="room_password", password="s3cret")
    await alice.send(type="room_lock", locked=True)
    await alice.send(type="record", on=True)
    running = (await until(alice, of_type("recordings")))[0]["recordings"][0]
    folder = tmp_path / "recordings" / running["id"]
    await until(bob, recorder_joined)
    await bob.send(type="chat", text="for the record only")
    await eventually(lambda: "for the record only" in _read(folder / "chat.jsonl"))
    await alice.send(type="leave")
    passed, _ = await until(bob, of_type("room_event", action="host_passed"), 5)
    assert passed["target"] == bob.id  # the longest seated person, never the recorder
    listed = await bob.expect("recordings")  # a new host is told what it may download
    assert [r["id"] for r in listed["recordings"]] == [running["id"]]

    mallory = await greeted(server, "mallory", [2])
    recorder = await one_recorder(tmp_path)
    os.kill(recorder, signal.SIGSTOP)  # it would leave the empty room by itself: not yet
    try:
        await bob.send(type="leave")
        await until(bob, of_type("left"), 5)
        joined = await mallory.join("r")
    finally:
        os.kill(recorder, signal.SIGCONT)

    assert (joined["hosts"], joined["members"]) == ([mallory.id], [])
    assert (joined["locked"], joined["protected"], joined["history"]) == (False, False, [])
    await eventually(lambda: ended(folder))
    assert [m["type"] for m in await drained(mallory)] == []  # no recordings, no recorder
    for peer in (alice, bob, mallory):
        await peer.close()


# ------------------------------------------------------------------ media in the files


async def test_the_recorder_writes_a_publishers_audio_and_video(
    server: RunningServer, http: httpx.AsyncClient, tmp_path: Path
) -> None:
    """An SDK member publishing small test pictures and a tone's silence, recorded ~3 s by the
    server's recorder: its WebM file, downloaded through its link, has video frames and audio
    samples spanning the recorded time. (Small pictures: this machine's two cores are shared;
    tests/e2e/test_recording.py records real browsers.)"""
    av = pytest.importorskip("av")
    mediastreams = pytest.importorskip("aiortc.mediastreams")
    from salon.client import Client

    class SmallPictures(mediastreams.VideoStreamTrack):  # type: ignore[misc]
        async def recv(self) -> Any:
            pts, time_base = await self.next_timestamp()
            frame = av.VideoFrame(width=160, height=120)
            for plane in frame.planes:
                plane.update(bytes(plane.buffer_size))
            frame.pts, frame.time_base = pts, time_base
            return frame

    host = await greeted(server, "host", [2])
    await host.join("m")
    ann = Client(server.base_url, "ann", ssl=server.ssl_context)
    try:
        await ann.connect()
        ann.add_track(SmallPictures())
        ann.add_track(mediastreams.AudioStreamTrack())
        await ann.set_media(mic=True, camera=True)
        await ann.join("m")
        asked = time.monotonic()
        await host.send(type="record", on=True)
        running = (await until(host, of_type("recordings")))[0]["recordings"][0]
        folder = tmp_path / "recordings" / running["id"]

        def writing() -> bool:
            return any(p.stat().st_size > 10_000 for p in folder.glob("ann-*.webm"))

        await eventually(writing)
        began = time.monotonic()
        await asyncio.sleep(3)  # what is recorded: its length is what the test checks
        await host.send(type="record", on=False)
        recorded, whole = time.monotonic() - began, time.monotonic() - asked

        def ended_listing(message: dict[str, Any]) -> bool:
            return message["type"] == "recordings" and bool(message["recordings"][0]["ended"])

        final, _ = await until(host, ended_listing)
    finally:
        await ann.close()
        await host.close()

    (video,) = [f for f in final["recordings"][0]["files"] if f["name"].endswith(".webm")]
    assert video["name"].startswith("ann-")
    got = await http.get(video["url"])
    assert got.status_code == 200
    assert got.headers["content-type"] == "video/webm"
    path = tmp_path / video["name"]
    path.write_bytes(got.content)
    with av.open(str(path)) as container:
        assert {stream.type for stream in container.streams} == {"video", "audio"}
        frames = {"video": 0, "audio": 0}
        for frame in container.decode(*container.streams):
            frames["video" if isinstance(frame, av.VideoFrame) else "audio"] += 1
        duration = (container.duration or 0) / 1_000_000
    assert frames["video"] > 20 and frames["audio"] > 50, frames
    assert recorded - 1 <= duration <= whole + 1, (duration, recorded, whole)


# ------------------------------------------------------------------ the recorder's process


def recorder_processes(data_dir: Path) -> list[int]:
    """The live recorders writing under ``data_dir`` (found by their ``--out``)."""
    found = []
    needle = str(data_dir / "recordings").encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            args = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if b"record" in args and any(arg.startswith(needle) for arg in args) and state != "Z":
            found.append(int(entry.name))
    return found


async def one_recorder(data_dir: Path) -> int:
    pids: list[int] = []

    def found() -> bool:
        pids[:] = recorder_processes(data_dir)
        return bool(pids)

    await eventually(found)
    (pid,) = pids
    return pid


async def test_the_recorder_is_confined_and_dies_with_its_server(tmp_path: Path) -> None:
    """No invitation on its command line, none of the server's secrets in its environment, a
    lower priority and limits; and when the server is killed outright, the recorder reads the
    end of its input and stops (no orphan recording on)."""
    secret = "r" * 40
    async with serve(tmp_path, SALON_RESUME_SECRET=secret, SALON_EXTRA_TOKEN="hush") as served:
        alice = await greeted(served.as_server(), "alice", [2])
        await alice.join("r")
        await alice.send(type="record", on=True)
        await until(alice, recorder_joined)
        pid = await one_recorder(tmp_path)
        proc = Path("/proc") / str(pid)

        args = (proc / "cmdline").read_bytes().decode().split("\0")
        assert args[args.index("record") + 1] == "-"  # the link comes on its stdin
        assert not [arg for arg in args if "invite" in arg or "/r/" in arg]
        environ = dict(
            line.split("=", 1)
            for line in (proc / "environ").read_bytes().decode().split("\0")
            if "=" in line
        )
        assert not [name for name in environ if name.startswith("SALON")], environ
        assert secret not in "".join(environ.values())
        assert "PATH" in environ
        server_nice = os.getpriority(os.PRIO_PROCESS, served.process.pid)
        assert os.getpriority(os.PRIO_PROCESS, pid) == min(19, server_nice + 10)
        assert resource.prlimit(pid, resource.RLIMIT_DATA) == (2 * 1024**3,) * 2
        assert resource.prlimit(pid, resource.RLIMIT_CORE) == (0, 0)
        assert resource.prlimit(pid, resource.RLIMIT_FSIZE)[0] < 2 * 1024**3

        served.process.kill()  # no drain, no SIGTERM to anyone
        await served.process.wait()

        await eventually(lambda: not recorder_processes(tmp_path), timeout=20)
        await alice.close()


async def test_a_draining_server_stops_its_recordings_first_and_starts_none(
    tmp_path: Path,
) -> None:
    """The first SIGTERM: every recording stops (the room hears it, the recorder leaves, the
    recording is finished) before the members hear ``server_draining``; a ``record`` from
    then on is refused."""
    async with serve(tmp_path, SALON_DRAIN_SPREAD_SECONDS="0.5") as served:
        server = served.as_server()
        alice = await greeted(server, "alice", [2])
        carol = await greeted(server, "carol", [2])
        await alice.join("a")
        await carol.join("b")
        await alice.send(type="record", on=True)
        running = (await until(alice, of_type("recordings")))[0]["recordings"][0]
        folder = tmp_path / "recordings" / running["id"]
        joined, _ = await until(alice, recorder_joined)
        await alice.send(type="chat", text="before the restart")
        await eventually(lambda: "before the restart" in _read(folder / "chat.jsonl"))
        await drained(carol)

        served.process.send_signal(signal.SIGTERM)
        await poll_until_not_ready(served)
        await carol.send(type="record", on=True, ref="late")

        refused, _ = await until(carol, of_type("error"), 10)
        assert (refused["code"], refused["ref"]) == ("recording_unavailable", "late")
        assert refused["message"] == "the server is shutting down"
        _, before = await until(alice, of_type("server_draining"))
        kinds = [(m["type"], m.get("action") or m.get("id")) for m in before]
        assert ("room_event", "recording_stopped") in kinds
        assert ("member_left", joined["member"]["id"]) in kinds
        assert ended(folder)
        await asyncio.wait_for(served.process.wait(), 30)
        assert served.process.returncode in (0, -signal.SIGTERM), served.output()
        for peer in (alice, carol):
            await peer.close()


async def poll_until_not_ready(served: Served) -> None:
    async with served.http() as http:
        for _ in range(200):
            if (await http.get("/api/v1/ready")).status_code == 503:
                return
            await asyncio.sleep(0.05)  # a process handling a signal: no event to await
    raise AssertionError("the server never started draining")
