import { afterEach, describe, expect, it, vi } from "vitest";
import { LocalMedia } from "../rtc/media";
import { SignalingClient } from "../signaling/client";
import { FakePeerConnection, FakeSocket, LIMITS } from "../test/fakes";
import { RECORD_PENDING_MS } from "./recording";
import { RoomSession } from "./session";

/** A client past its welcome (protocol version 2), in a room session that has not joined yet. */
async function online() {
  const socket = new FakeSocket();
  const client = new SignalingClient("wss://x/ws", () => socket);
  const ready = client.connect("me");
  socket.open();
  expect(socket.sent[0]).toMatchObject({ type: "hello", versions: [1, 2, 3] });
  socket.receive({
    type: "welcome",
    version: 2,
    id: "self",
    name: "me",
    ice_servers: [],
    limits: LIMITS,
    resume_token: "t",
    account: null,
    resumed: null,
  });
  await ready;
  socket.sent.length = 0;
  const factory = () => new FakePeerConnection("pc") as unknown as RTCPeerConnection;
  const room = new RoomSession(client, new LocalMedia(), factory);
  return { socket, room };
}

const member = (id: string, name: string, recording?: boolean) => ({
  id,
  name,
  polite: true,
  media: { mic: true, camera: true, screen: false, ...(recording === undefined ? {} : { recording }) },
});

const joined = (extra: object = {}) => ({
  type: "joined",
  room: "r1",
  private: false,
  members: [member("ann", "Ann")],
  history: [],
  last_seq: 0,
  hosts: ["self"],
  locked: false,
  lobby: false,
  protected: false,
  hands: [],
  ...extra,
});

const file = (name: string) => ({ name, bytes: 1_000, url: `/api/v1/recordings/x/files/${name}?key=k` });
const running = { id: "rec2", started: 2_000, ended: null, bytes: 10, files: [] };
const finished = { id: "rec1", started: 1_000, ended: 1_500, bytes: 2_000, files: [file("ann-ann.webm")] };

async function hostInRoom() {
  const online_ = await online();
  online_.room.join("r1");
  online_.socket.receive(joined());
  online_.socket.sent.length = 0;
  return online_;
}

afterEach(() => {
  vi.useRealTimers();
});

describe("RoomSession recording: the badge", () => {
  it("shows while any member's media says recording, and marks that member as a recorder", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.receive(joined({ hosts: ["ann"] }));
    expect(room.snapshot.recording).toBe(false);
    socket.receive({ type: "member_joined", room: "r1", member: member("rec", "Recorder", true) });
    expect(room.snapshot.recording).toBe(true);
    expect(room.snapshot.members.map((m) => [m.id, m.recording])).toEqual([
      ["ann", false],
      ["rec", true],
    ]);
    socket.receive({ type: "member_left", room: "r1", id: "rec" });
    expect(room.snapshot.recording).toBe(false);
  });

  it("follows `media` messages, and a version 1 member (no field) is no recorder", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.receive(joined({ members: [member("ann", "Ann"), member("bot", "Bot")] }));
    socket.receive({ type: "media", from: "bot", mic: false, camera: false, screen: false, recording: true });
    expect(room.snapshot.recording).toBe(true);
    socket.receive({ type: "media", from: "bot", mic: false, camera: false, screen: false });
    expect(room.snapshot.recording).toBe(false);
  });

  it("is on straight after joining a room that is being recorded", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.receive(joined({ members: [member("ann", "Ann"), member("rec", "Recorder", true)] }));
    expect(room.snapshot.recording).toBe(true);
  });

  it("takes only the server's recorder for one: a member that merely says it records stays a person", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.receive(joined());
    socket.receive({
      type: "member_joined",
      room: "r1",
      member: { ...member("rec", "Recorder", true), recorder: true },
    });
    socket.receive({ type: "member_joined", room: "r1", member: member("eve", "Recorder", true) });
    expect(room.snapshot.recording).toBe(true);
    expect(room.snapshot.members.map((m) => [m.id, m.recording, m.recorder])).toEqual([
      ["ann", false, false],
      ["rec", true, true],
      ["eve", true, false],
    ]);
  });

  it("never says `recording` itself: the browser does not record", async () => {
    const { socket, room } = await online();
    room.join("r1");
    expect(socket.sent[0]).toMatchObject({
      type: "join",
      media: { mic: false, camera: false, screen: false },
    });
    expect(socket.sent[0]).not.toHaveProperty("media.recording");
  });
});

describe("RoomSession recording: a host's Record", () => {
  it("sends record on and off, only from inside the room", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.sent.length = 0;
    expect(room.record(true)).toBe(false);
    expect(socket.sent).toEqual([]);
    socket.receive(joined());
    socket.sent.length = 0;
    expect(room.record(true)).toBe(true);
    expect(socket.sent).toEqual([{ type: "record", on: true, ref: "record" }]);
    expect(room.snapshot.recordPending).toBe("start");
  });

  it("keeps the newest recording first and ends the wait when the list shows it running", async () => {
    const { socket, room } = await hostInRoom();
    room.record(true);
    socket.receive({
      type: "room_event",
      room: "r1",
      action: "recording_started",
      by: "self",
      by_name: "me",
      target: null,
      target_name: null,
    });
    expect(room.snapshot.notes.at(-1)?.text).toBe("You started recording");
    // The button waits for the list: the event may come before it.
    expect(room.snapshot.recordPending).toBe("start");
    socket.receive({ type: "recordings", room: "r1", recordings: [finished, running] });
    expect(room.snapshot.recordPending).toBeNull();
    expect(room.snapshot.recordings.map((r) => r.id)).toEqual(["rec2", "rec1"]);

    room.record(false);
    expect(room.snapshot.recordPending).toBe("stop");
    // A list that still shows it running does not end the wait; one with it ended does.
    socket.receive({ type: "recordings", room: "r1", recordings: [finished, { ...running, bytes: 20 }] });
    expect(room.snapshot.recordPending).toBe("stop");
    const ended = { ...running, ended: 9_000, files: [file("chat.jsonl")] };
    socket.receive({ type: "recordings", room: "r1", recordings: [finished, ended] });
    expect(room.snapshot.recordPending).toBeNull();
    expect(room.snapshot.recordings[0]).toEqual(ended);
  });

  it("says clearly when the server cannot record, and stops waiting", async () => {
    const { socket, room } = await hostInRoom();
    room.record(true);
    socket.receive({
      type: "error",
      code: "recording_unavailable",
      message: "Recording is disabled.",
      ref: "record",
    });
    expect(room.snapshot.recordPending).toBeNull();
    expect(room.snapshot.problem).toEqual({
      code: "recording_unavailable",
      message: "Recording is not available: recording is disabled.",
    });
    expect(room.snapshot.phase).toBe("joined");
  });

  it("stops waiting after a while when the server says nothing (already recording)", async () => {
    const { room } = await hostInRoom();
    vi.useFakeTimers();
    room.record(true);
    vi.advanceTimersByTime(RECORD_PENDING_MS - 1);
    expect(room.snapshot.recordPending).toBe("start");
    vi.advanceTimersByTime(1);
    expect(room.snapshot.recordPending).toBeNull();
  });

  it("notes a recorder that stopped by itself", async () => {
    const { socket, room } = await hostInRoom();
    socket.receive({
      type: "room_event",
      room: "r1",
      action: "recording_stopped",
      by: null,
      by_name: null,
      target: null,
      target_name: null,
    });
    expect(room.snapshot.notes.at(-1)?.text).toBe("Recording stopped");
  });
});

describe("RoomSession recording: the list is a host's", () => {
  it("forgets the list and its links when this side is no longer a host", async () => {
    const { socket, room } = await hostInRoom();
    socket.receive({ type: "recordings", room: "r1", recordings: [finished] });
    expect(room.snapshot.recordings).toHaveLength(1);
    socket.receive({
      type: "room_state",
      room: "r1",
      hosts: ["ann"],
      locked: false,
      lobby: false,
      protected: false,
    });
    expect(room.snapshot.recordings).toEqual([]);
  });

  it("takes the list on becoming a host, in whichever order the two come; not another room's", async () => {
    const { socket, room } = await online();
    room.join("r1");
    socket.receive(joined({ hosts: ["ann"] }));
    socket.receive({ type: "recordings", room: "elsewhere", recordings: [finished] });
    expect(room.snapshot.recordings).toEqual([]);
    socket.receive({ type: "recordings", room: "r1", recordings: [finished] });
    socket.receive({
      type: "room_state",
      room: "r1",
      hosts: ["self"],
      locked: false,
      lobby: false,
      protected: false,
    });
    expect(room.snapshot).toMatchObject({ isHost: true, recordings: [finished] });
  });

  it("keeps the list over a `joined` snapshot of the same room, clears it for another room", async () => {
    const { socket, room } = await hostInRoom();
    socket.receive({ type: "recordings", room: "r1", recordings: [finished] });
    socket.receive(joined());
    expect(room.snapshot.recordings).toEqual([finished]);
    room.join("r2");
    socket.receive(joined({ room: "r2" }));
    expect(room.snapshot.recordings).toEqual([]);
  });
});
