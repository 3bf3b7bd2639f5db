"""Recording in the core (docs/PROTOCOL.md §3.9), driven with messages: who may record, who
hears what, the recorder's invitation and seat, and when a recording stops. The
:class:`Recorder` here is a fake that notes what it was asked (the real one, child processes,
is proven in tests/integration/test_recording.py); plus the pure parts of the server side:
download keys, the recorder's base URL and the recordings folder."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from salon.core.recordings import (
    DOWNLOAD_KEY_SECONDS,
    KEY_REFRESH_SECONDS,
    MAX_LISTED,
    DownloadKeys,
    Run,
)
from salon.core.session import Session
from salon.core.settings import Settings
from salon.protocol.messages import (
    Joined,
    Left,
    MediaChanged,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    Recording,
    Recordings,
    RoomEvent,
    SignedInAccount,
    Welcome,
)
from salon.server.recorder import Recorders, local_base_url, recorder_environment
from salon.server.recording_store import ACTIVE_SECONDS, Meta, RecordingStore
from tests.unit.conftest import ICE, Client, FakeTransport, World

BASE = "https://192.0.2.7:8443"
MIB = 1024 * 1024


class FakeRecorder:
    """Notes what it was asked; lists the runs it started as the real one lists recordings
    (those of the meeting, or of the host's account)."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.asked: list[str | None] = []  # the accounts of the hosts who asked
        self.started: list[tuple[Run, str]] = []
        self.stopped: list[str] = []

    def unavailable(self, account: str | None) -> str | None:
        self.asked.append(account)
        return self.reason

    def start(self, run: Run, link: str) -> None:
        self.started.append((run, link))

    def stop(self, run_id: str) -> None:
        self.stopped.append(run_id)

    def listing(self, room: str, meeting: str, account: str | None) -> list[Recording]:
        return [
            Recording(id=run.id, started=run.started_ms, ended=None, bytes=0, files=[])
            for run, _ in self.started
            if run.room == room
            and (run.meeting == meeting or (account is not None and run.account == account))
        ]


@pytest.fixture
def recorder(world: World) -> FakeRecorder:
    fake = FakeRecorder()
    world.hub.recorder = fake
    return fake


async def greeted(
    world: World, name: str, version: int = 2, *, account: str | None = None
) -> Client:
    transport = FakeTransport()
    signed_in = None if account is None else SignedInAccount(username=account, display_name=name)
    session = Session(world.hub, transport, lambda _: list(ICE), base_url=BASE, account=signed_in)
    client = Client(session, transport)
    await client.send(type="hello", versions=list(range(1, version + 1)), name=name)
    client.welcome = client.take_one(Welcome)
    return client


async def seated(world: World, room: str, *names: str, version: int = 2) -> list[Client]:
    clients = [await greeted(world, name, version) for name in names]
    for client in clients:
        await client.send(type="join", room=room)
    for client in clients:
        client.take()
    return clients


def events(client: Client) -> list[str]:
    return [m.action for m in client.take() if isinstance(m, RoomEvent)]


def invite_of(link: str) -> str:
    return urlsplit(link).fragment.removeprefix("invite=")


async def recorder_joins(world: World, link: str) -> Client:
    bot = await greeted(world, "Recorder")
    room = urlsplit(link).path.removeprefix("/r/")
    await bot.send(type="join", room=room, invite=invite_of(link), media={"recording": True})
    joined = bot.take()[0]
    assert isinstance(joined, Joined), joined
    return bot


# ------------------------------------------------------------------ starting and stopping


async def test_a_host_records_the_room_hears_it_and_the_recorder_is_let_in(
    world: World, recorder: FakeRecorder
) -> None:
    host, guest = await seated(world, "r", "host", "guest")
    (old,) = await seated(world, "r", "old", version=1)
    host.take(), guest.take()

    await host.send(type="record", on=True)

    ((run, link),) = recorder.started
    assert (run.room, run.by, run.by_name) == ("r", host.id, "host")
    assert link.startswith(f"{BASE}/r/r#invite=")
    got = host.take()
    assert isinstance(got[0], RoomEvent) and got[0].action == "recording_started"
    assert got[0].by == host.id
    listed = Recording(id=run.id, started=run.started_ms, ended=None, bytes=0, files=[])
    assert got[1] == Recordings(room="r", recordings=[listed])
    assert events(guest) == ["recording_started"]
    assert old.take() == []  # version 1: no event it does not know

    await host.send(type="room_lock", locked=True)  # the recorder gets in all the same
    await host.send(type="room_lobby", enabled=True)
    host.take(), guest.take(), old.take()
    bot = await recorder_joins(world, link)

    (news,) = old.take()
    assert isinstance(news, MemberJoined)
    assert news.member.media.recording is True
    assert news.member.recorder is True  # the server says so: it started this one
    wire = json.loads(MemberInfo.model_validate(news.member).model_dump_json())
    assert wire["media"]["recording"] is True
    assert wire["recorder"] is True
    assert world.hub.rooms["r"].hosts == {host.id}  # never a host
    assert world.hub.recording("r") is not None
    assert world.hub.recording("r").recorder == bot.id  # type: ignore[union-attr]

    late = await greeted(world, "late")  # the invitation is spent once its recorder is in
    await late.send(type="join", room="r", invite=invite_of(link))
    assert late.take_error().code == "recording_unavailable"

    host.take(), guest.take()
    await host.send(type="make_host", id=bot.id)
    assert host.take_error().code == "no_such_member"

    await host.send(type="record", on=True)  # already: nothing changes
    assert host.take() == []
    await host.send(type="record", on=False)
    assert recorder.stopped == [run.id]
    assert events(guest) == ["recording_stopped"]
    assert events(host) == ["recording_stopped"]
    await host.send(type="record", on=True)  # still finishing
    error = host.take_error()
    assert (error.code, error.message) == (
        "recording_unavailable",
        "this room's last recording is still being finished: retry",
    )

    world.hub.recording_ended("r", run.id)  # its process is gone: its seat goes too
    assert bot.id not in world.hub.rooms["r"].seats
    assert isinstance(host.take()[-1], Recordings)
    assert [m for m in guest.take() if isinstance(m, Recordings)] == []  # hosts only
    assert world.hub.recording("r") is None


async def test_a_recorder_invitation_is_worth_nothing_without_a_recording(
    world: World, recorder: FakeRecorder
) -> None:
    (host,) = await seated(world, "r", "host")
    await host.send(type="record", on=True)
    ((run, link),) = recorder.started
    await host.send(type="record", on=False)
    world.hub.recording_ended("r", run.id)
    await host.send(type="room_lock", locked=True)

    with pytest.raises(AssertionError):
        await recorder_joins(world, link)


async def test_a_recording_ended_by_itself_is_told_with_no_one_as_its_author(
    world: World, recorder: FakeRecorder
) -> None:
    host, guest = await seated(world, "r", "host", "guest")
    await host.send(type="record", on=True)
    ((run, _),) = recorder.started
    guest.take()

    world.hub.recording_ended("r", run.id)  # e.g. the recorder crashed

    (event,) = [m for m in guest.take() if isinstance(m, RoomEvent)]
    assert (event.action, event.by) == ("recording_stopped", None)


async def test_the_recorder_left_alone_is_stopped_and_never_inherits_the_host_role(
    world: World, recorder: FakeRecorder
) -> None:
    host, guest = await seated(world, "r", "host", "guest")
    await host.send(type="record", on=True)
    ((run, link),) = recorder.started
    bot = await recorder_joins(world, link)

    await host.send(type="leave")
    assert world.hub.rooms["r"].hosts == {guest.id}
    assert recorder.stopped == []
    bot.take()
    await guest.send(type="leave")

    assert recorder.stopped == [run.id]  # nobody is left to record
    # The meeting is over: it hears the last person go, then goes too.
    assert bot.take() == [MemberLeft(room="r", id=guest.id), Left(room="r", reason="ended")]
    newcomer = await greeted(world, "newcomer")
    await newcomer.send(type="join", room="r")  # the first person in is its host
    joined = newcomer.take()[0]
    assert isinstance(joined, Joined) and joined.hosts == [newcomer.id]
    assert joined.members == []


async def test_a_locked_meeting_left_to_its_recorder_ends_and_a_stranger_gets_nothing_of_it(
    world: World, recorder: FakeRecorder
) -> None:
    """The review's case: the host locks the room, sets a password, records, chats and
    leaves; whoever comes next must not be seated in that meeting (as its host, past its
    lock and password), see its chat, nor be told of its recording — now or when it ends."""
    (alice,) = await seated(world, "r", "alice")
    await alice.send(type="room_password", password="s3cret")
    await alice.send(type="room_lock", locked=True)
    await alice.send(type="record", on=True)
    ((run, link),) = recorder.started
    bot = await recorder_joins(world, link)
    await alice.send(type="chat", text="for the record only")
    alice.take(), bot.take()

    await alice.send(type="leave")

    assert recorder.stopped == [run.id]
    mallory = await greeted(world, "mallory")
    await mallory.send(type="join", room="r")
    got = mallory.take()
    joined = got[0]
    assert isinstance(joined, Joined), got
    assert (joined.hosts, joined.members, joined.locked) == ([mallory.id], [], False)
    assert [entry.text for entry in joined.history] == []  # erased with the meeting
    assert [m for m in got if isinstance(m, Recordings)] == []
    world.hub.recording_ended("r", run.id)  # its recorder is gone now
    assert [m for m in mallory.take() if isinstance(m, Recordings)] == []


async def test_a_host_of_the_same_account_is_shown_the_recording_in_a_later_meeting(
    world: World, recorder: FakeRecorder
) -> None:
    alice = await greeted(world, "Alice", account="alice")
    await alice.send(type="join", room="r")
    await alice.send(type="record", on=True)
    ((run, _),) = recorder.started
    await alice.send(type="leave")
    world.hub.recording_ended("r", run.id)
    guest = await greeted(world, "guest")
    await guest.send(type="join", room="r")  # a later meeting: its first guest hosts it
    assert [m for m in guest.take() if isinstance(m, Recordings)] == []

    again = await greeted(world, "Alice", account="alice")
    await again.send(type="join", room="r")
    assert [m for m in again.take() if isinstance(m, Recordings)] == []  # not a host (yet)

    await guest.send(type="make_host", id=again.id)

    (listed,) = [m for m in again.take() if isinstance(m, Recordings)]
    assert [r.id for r in listed.recordings] == [run.id]


async def test_only_the_server_marks_its_recorder_and_it_always_shows_recording(
    world: World, recorder: FakeRecorder
) -> None:
    host, liar = await seated(world, "r", "host", "liar")
    await liar.send(type="media", mic=False, camera=False, screen=False, recording=True)
    (said,) = host.take()
    assert isinstance(said, MediaChanged) and said.recording is True  # its own word: a badge
    late = await greeted(world, "late")
    await late.send(type="join", room="r", media={"recording": True})
    joined = late.take()[0]
    assert isinstance(joined, Joined)
    assert [(m.name, m.media.recording, m.recorder) for m in joined.members] == [
        ("host", False, False),
        ("liar", True, False),  # says it records; is not the server's recorder
    ]
    (news,) = [m for m in host.take() if isinstance(m, MemberJoined)]
    assert (news.member.media.recording, news.member.recorder) == (True, False)

    await host.send(type="record", on=True)
    ((_, link),) = recorder.started
    bot = await recorder_joins(world, link)
    await bot.send(type="media", mic=False, camera=False, screen=False, recording=False)
    host.take()
    newcomer = await greeted(world, "newcomer")
    await host.send(type="room_lobby", enabled=False)
    await newcomer.send(type="join", room="r")
    joined = newcomer.take()[0]
    assert isinstance(joined, Joined)
    (seen,) = [m for m in joined.members if m.id == bot.id]
    assert (seen.media.recording, seen.recorder) == (True, True)  # it cannot hide


async def test_a_recorder_invitation_is_good_once_and_only_for_its_own_recording(
    world: World, recorder: FakeRecorder
) -> None:
    (host,) = await seated(world, "r", "host")
    await host.send(type="record", on=True)
    ((first, first_link),) = recorder.started
    await host.send(type="record", on=False)
    world.hub.recording_ended("r", first.id)  # it never even joined
    await host.send(type="record", on=True)
    second_link = recorder.started[-1][1]

    stale = await greeted(world, "stale")
    await stale.send(type="join", room="r", invite=invite_of(first_link))
    assert stale.take_error().code == "recording_unavailable"
    await recorder_joins(world, second_link)
    again = await greeted(world, "again")
    await again.send(type="join", room="r", invite=invite_of(second_link))
    assert again.take_error().code == "recording_unavailable"


async def test_starting_recordings_is_rate_limited_per_room_and_stopping_is_not(
    make_world: object,
) -> None:
    world: World = make_world(record_burst=2, records_per_hour=6)  # type: ignore[operator]
    fake = FakeRecorder()
    world.hub.recorder = fake
    (host,) = await seated(world, "r", "host")
    (other,) = await seated(world, "s", "other")
    for _ in range(2):
        await host.send(type="record", on=True)
        await host.send(type="record", on=False)
        world.hub.recording_ended("r", fake.started[-1][0].id)
    host.take()

    await host.send(type="record", on=True, ref="third")

    error = host.take_error()
    assert (error.code, error.ref) == ("rate_limited", "third")
    assert error.message == "this room started too many recordings: try again in 600 s"
    assert len(fake.started) == 2
    await other.send(type="record", on=True)  # another room keeps its own
    assert len(fake.started) == 3
    world.clock.advance(600)
    await host.send(type="record", on=True)
    assert len(fake.started) == 4


async def test_hosts_get_fresh_download_keys_before_theirs_expire(
    world: World, recorder: FakeRecorder
) -> None:
    host, guest = await seated(world, "r", "host", "guest")
    await host.send(type="record", on=True)
    host.take()
    world.clock.advance(KEY_REFRESH_SECONDS - 1)
    world.hub.sweep()
    assert host.take() == []
    world.clock.advance(1)

    world.hub.sweep()

    assert [type(m) for m in host.take()] == [Recordings]
    assert [m for m in guest.take() if isinstance(m, Recordings)] == []
    assert KEY_REFRESH_SECONDS <= DOWNLOAD_KEY_SECONDS / 2  # a host's key is always good


async def test_ending_the_meeting_or_removing_the_recorder_stops_it(
    world: World, recorder: FakeRecorder
) -> None:
    (host,) = await seated(world, "r", "host")
    await host.send(type="record", on=True)
    ((first, link),) = recorder.started
    bot = await recorder_joins(world, link)
    await host.send(type="remove", id=bot.id)
    assert recorder.stopped == [first.id]
    world.hub.recording_ended("r", first.id)

    await host.send(type="record", on=True)
    second = recorder.started[-1][0]
    await host.send(type="end_meeting")
    assert recorder.stopped == [first.id, second.id]


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("reason", "recording is turned off"),
        ("none", "this server does not record meetings"),
        ("full", "the room is full: its recorder needs a seat"),
    ],
)
async def test_a_room_that_cannot_be_recorded_is_refused_and_nothing_starts(
    make_world: object, setup: str, message: str
) -> None:
    world: World = make_world(max_room_members=2)  # type: ignore[operator]
    fake = FakeRecorder()
    world.hub.recorder = None if setup == "none" else fake
    fake.reason = "recording is turned off" if setup == "reason" else None
    names = ("host", "guest") if setup == "full" else ("host",)
    host, *_ = await seated(world, "r", *names)

    await host.send(type="record", on=True, ref=5)

    error = host.take_error()
    assert (error.code, error.message, error.ref) == ("recording_unavailable", message, 5)
    assert fake.started == []
    assert world.hub.recording("r") is None


async def test_only_hosts_record_and_never_in_a_call(world: World, recorder: FakeRecorder) -> None:
    _, guest = await seated(world, "r", "host", "guest")
    await guest.send(type="record", on=True)
    assert guest.take_error().code == "not_host"
    (old,) = await seated(world, "s", "old", version=1)
    await old.send(type="record", on=True)
    assert old.take_error().code == "unknown_type"
    await old.send(type="media", mic=False, camera=False, screen=False, recording=False)
    assert old.take_error().message == "recording: unknown field"
    assert recorder.started == []


# ------------------------------------------------------------------ keys, URL and folder


def test_a_download_key_opens_its_file_until_it_expires() -> None:
    keys = DownloadKeys(b"k" * 32)
    key = keys.make("a" * 16, "chat.jsonl", 1000)
    assert keys.check(key, "a" * 16, "chat.jsonl", 999)
    assert not keys.check(key, "a" * 16, "chat.jsonl", 1000)  # expired
    assert not keys.check(key, "b" * 16, "chat.jsonl", 999)  # another recording's
    assert not keys.check(key, "a" * 16, "x.webm", 999)  # another file's
    assert not keys.check(key.replace("1000.", "9999."), "a" * 16, "chat.jsonl", 999)
    assert not DownloadKeys(b"o" * 32).check(key, "a" * 16, "chat.jsonl", 999)
    # "²" and "¹⁰" are digits to str.isdigit() but not to int(): refused, not a ValueError.
    for garbage in (None, "", ".", "x.y", "1000", "-1.abc", "1" * 200, "².abc", "¹⁰.abc"):
        assert not keys.check(garbage, "a" * 16, "chat.jsonl", 0)


@pytest.mark.parametrize(
    ("server", "http", "url"),
    [
        (("192.0.2.7", 8443), False, "https://192.0.2.7:8443"),
        (("127.0.0.1", 8080), True, "http://127.0.0.1:8080"),
        (("::1", 8443), False, "https://[::1]:8443"),
        (("::ffff:10.0.0.2", 8443), False, "https://10.0.0.2:8443"),
        (("fe80::1%eth0", 8443), False, "https://[fe80::1%25eth0]:8443"),
        (("/run/salon.sock", None), False, None),
        (None, False, None),
    ],
)
def test_the_recorder_connects_to_the_local_address(
    server: tuple[str, int | None] | None, http: bool, url: str | None
) -> None:
    assert local_base_url(server, http) == url


def test_the_folder_finishes_interrupted_recordings_and_serves_only_their_files(
    tmp_path: Path,
) -> None:
    store = RecordingStore(tmp_path)
    meta = Meta("c" * 16, "r", "r@1", 1000, None, "m", "host", None)
    folder = store.create(meta)
    (folder / "host-m.webm").write_bytes(b"x" * 10)
    (folder / ".hidden").write_bytes(b"x")
    (tmp_path / "not-a-recording").mkdir()

    again = RecordingStore(tmp_path)
    again.load(now_ms=5_000_000_000_000)

    loaded = again.get("c" * 16)
    assert loaded is not None and loaded.ended is not None and loaded.bytes == 10
    assert json.loads((folder / "recording.json").read_text())["ended"] == loaded.ended
    assert again.files("c" * 16) == [("host-m.webm", 10)]
    assert again.file_path("c" * 16, "host-m.webm") == folder / "host-m.webm"
    for name in ("recording.json", ".hidden", "../c" * 3, "nothing.webm"):
        assert again.file_path("c" * 16, name) is None
    assert again.expired(before_ms=1001) == ["c" * 16]
    assert again.expired(before_ms=1000) == []


def test_a_recording_another_process_made_in_the_shared_folder_is_served(
    tmp_path: Path,
) -> None:
    """Two processes share the data folder (docs/SCALING.md): a download key made by the one
    recording reaches either; each serves the other's files, and nothing outside one."""
    here, there = RecordingStore(tmp_path), RecordingStore(tmp_path)
    here.load(now_ms=0)
    there.load(now_ms=0)
    folder = there.create(Meta("d" * 16, "r", "r@1", 1000, None, "m", "host", None))
    (folder / "chat.jsonl").write_text("{}\n")
    assert here.get("d" * 16) is None  # not listed here
    assert here.file_path("d" * 16, "chat.jsonl") == folder / "chat.jsonl"
    (tmp_path / ("e" * 16)).mkdir()  # a folder without recording.json is none
    (tmp_path / ("e" * 16) / "chat.jsonl").write_text("{}\n")
    for recording, name in (("e" * 16, "chat.jsonl"), ("d" * 16, "recording.json"), ("..", "x")):
        assert here.file_path(recording, name) is None


def test_a_restart_ends_only_the_recordings_whose_process_is_gone(tmp_path: Path) -> None:
    """Processes share the recordings folder (docs/SCALING.md). One that starts ends the
    recordings nobody runs any more, leaves running those a live process owns (on this host:
    its pid with its start time; on another: files written in the last two minutes), and
    sees the end their process notes later."""
    host = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()

    def recording(letter: str, owner: str | None, *, age: float = 0.0) -> Path:
        store = RecordingStore(tmp_path, owner=owner)
        folder = store.create(Meta(letter * 16, "r", "r@1", 1000, None, "m", "host", None))
        (folder / "host-m.webm").write_bytes(b"x" * 10)
        if age:
            then = time.time() - age
            os.utime(folder / "host-m.webm", (then, then))
        return folder

    here = RecordingStore(tmp_path)  # this process, which is alive
    here.create(Meta("a" * 16, "r", "r@1", 1000, None, "m", "host", None))
    (tmp_path / ("a" * 16) / "host-m.webm").write_bytes(b"x" * 7)
    recording("b", f"{host}/{gone.pid}/1")  # its process exited
    recording("c", f"{host}/{os.getpid()}/1")  # this pid, but started at another time
    recording("d", "elsewhere/1/1")  # written to just now
    recording("e", "elsewhere/1/1", age=ACTIVE_SECONDS + 60)
    old = recording("f", None)  # before owners were noted
    body = json.loads((old / "recording.json").read_text())
    del body["owner"]
    (old / "recording.json").write_text(json.dumps({**body, "a_later_field": 1}))
    (tmp_path / ("8" * 16)).mkdir()  # not a recording.json this version can read
    (tmp_path / ("8" * 16) / "recording.json").write_text("[1, 2]")
    (tmp_path / ("9" * 16)).mkdir()  # an owner that is not one: nobody runs it
    (tmp_path / ("9" * 16) / "recording.json").write_text(
        json.dumps({**body, "id": "9" * 16, "owner": 5})
    )

    started = RecordingStore(tmp_path, owner=f"{host}/1/1")
    started.load(now_ms=5_000_000_000_000)
    running = {meta.id[0] for meta in started.of_room("r") if meta.ended is None}
    assert running == {"a", "d"}
    assert len(started.of_room("r")) == 7
    on_disk = json.loads((tmp_path / ("a" * 16) / "recording.json").read_text())
    assert on_disk["ended"] is None and on_disk["owner"] == here.owner

    here.finish("a" * 16, 2000)  # the live process notes the end: the other one sees it
    shutil.rmtree(tmp_path / ("d" * 16))  # and a folder deleted meanwhile is forgotten
    listed = {meta.id[0]: meta for meta in started.of_room("r")}
    assert set(listed) == {"a", "b", "c", "e", "f", "9"}
    assert (listed["a"].ended, listed["a"].bytes) == (2000, 7)


# ------------------------------------------------------------------ the server's recorders


async def _idle(self: Recorders, child: object, link: str, folder: Path) -> None:
    """Stands in for a recorder's process in these tests: it runs until cancelled."""
    await asyncio.Event().wait()


def _recorders(world: World, data: Path, **options: object) -> Recorders:
    settings = Settings(data_dir=data, recordings=options)
    recorders = Recorders(settings, world.clock, world.hub, DownloadKeys(b"k" * 32))
    recorders.open()
    return recorders


def _run(n: int, room: str = "r", meeting: str = "r@m") -> Run:
    return Run(f"{n:016x}", room, meeting, 1_700_000_000_000 + n, "m", "host", None)


def _finished_recording(data: Path, n: int, size: int, meeting: str = "r@old") -> Path:
    folder = data / "recordings" / f"{n:016x}"
    folder.mkdir(parents=True)
    meta = Meta(f"{n:016x}", "r", meeting, n, n + 1, "m", "host", None)
    (folder / "recording.json").write_text(json.dumps(meta.stored()))
    with (folder / "host-m.webm").open("wb") as file:
        file.truncate(size)  # sparse: its size is what counts
    return folder


async def test_each_recording_gets_an_equal_share_so_one_never_blocks_the_others(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Recorders, "_run", _idle)
    recorders = _recorders(world, tmp_path, max_bytes=8 * MIB, max_active=4)
    try:
        for n in range(4):
            assert recorders.unavailable(None) is None, n
            recorders.start(_run(n, room=f"room{n}"), "https://192.0.2.7:8443/r/x#invite=i")
        shares = [child.share for child in recorders._children.values()]
        assert shares == [2 * MIB] * 4  # not the whole budget to the first
        assert recorders.unavailable(None) == (
            "4 recordings run already, as many as this server allows"
        )
    finally:
        await _cancel(recorders)


async def test_a_folder_deleted_by_hand_stops_counting_at_the_next_sweep(
    world: World, tmp_path: Path
) -> None:
    folder = _finished_recording(tmp_path, 1, 8 * MIB)
    recorders = _recorders(world, tmp_path, max_bytes=8 * MIB)
    assert recorders.unavailable(None) == (
        "the storage for recordings is full: older recordings must go first"
    )
    shutil.rmtree(folder)

    assert recorders.unavailable(None) is not None  # counted as it was ...
    assert recorders._sweeping is not None
    await recorders._sweeping  # ... which made it count again

    assert recorders.unavailable(None) is None
    assert recorders.store.get(f"{1:016x}") is None


async def test_only_signed_in_hosts_record_when_so_set_and_nobody_while_stopping(
    world: World, tmp_path: Path
) -> None:
    anyone = _recorders(world, tmp_path / "a")
    assert anyone.unavailable(None) is None  # the default: any host
    signed_in = _recorders(world, tmp_path / "b", hosts="signed_in")
    assert signed_in.unavailable(None) == (
        "on this server only hosts signed in to an account may record"
    )
    assert signed_in.unavailable("alice") is None

    await anyone.stop_all()  # a drain begins

    assert anyone.unavailable("alice") == "the server is shutting down"


async def test_a_recording_with_nothing_in_it_is_deleted_when_it_ends(
    world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Recorders, "_run", _idle)
    recorders = _recorders(world, tmp_path)
    empty, kept = _run(1), _run(2)
    try:
        for run in (empty, kept):
            recorders.start(run, "https://192.0.2.7:8443/r/x#invite=i")
        root = tmp_path / "recordings"
        (root / empty.id / "chat.jsonl").touch()  # opened, never written
        (root / kept.id / "chat.jsonl").write_text('{"text": "hi"}\n')

        for run in (empty, kept):
            recorders._finished(run)

        assert not (root / empty.id).exists()
        assert recorders.store.get(empty.id) is None
        assert json.loads((root / kept.id / "recording.json").read_text())["ended"] is not None
    finally:
        await _cancel(recorders)


def test_a_listing_has_the_newest_recordings_only_with_keys_valid_an_hour(
    world: World, tmp_path: Path
) -> None:
    for n in range(MAX_LISTED + 5):
        _finished_recording(tmp_path, n, 10, meeting="r@m")
    recorders = _recorders(world, tmp_path)

    listed = recorders.listing("r", "r@m", None)

    assert [r.id for r in listed] == [f"{n:016x}" for n in range(5, MAX_LISTED + 5)]
    expires = int(listed[0].files[0].url.split("?key=")[1].split(".")[0])
    assert expires == world.clock.wall_ms() // 1000 + 3600
    assert recorders.listing("r", "r@other", None) == []


def test_the_recorder_gets_its_link_on_stdin_and_none_of_the_servers_secrets(
    world: World, tmp_path: Path
) -> None:
    recorders = _recorders(world, tmp_path)
    command = recorders._command(tmp_path / "out", 5 * MIB)
    assert command[1:6] == ["-m", "salon", "bot", "record", "-"]
    assert not [arg for arg in command if "invite" in arg or "/r/" in arg]
    server = {
        "PATH": "/usr/bin",
        "HOME": "/home/salon",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
        "SALON_RESUME_SECRET": "x" * 40,
        "SALON_DATABASE_URL": "postgresql://salon:pw@db/salon",
        "SALON_TURN_SECRET": "t",
        "DATABASE_URL": "postgresql://x",
        "AWS_SECRET_ACCESS_KEY": "k",
    }
    assert recorder_environment(server) == {
        "PATH": "/usr/bin",
        "HOME": "/home/salon",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TMPDIR": "/tmp",
    }


async def _cancel(recorders: Recorders) -> None:
    for child in list(recorders._children.values()):
        if child.task is not None:
            child.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await child.task
