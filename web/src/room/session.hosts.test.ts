import { describe, expect, it } from "vitest";
import { LocalMedia } from "../rtc/media";
import { SignalingClient } from "../signaling/client";
import { FakePeerConnection, FakeSocket, LIMITS, settle } from "../test/fakes";
import { CallSession } from "./call";
import { RoomSession } from "./session";

/** A track as LocalMedia sees one: `enabled` is what the mic and camera buttons flip. */
function fakeTrack(kind: "audio" | "video") {
  return { kind, enabled: true, id: kind, getSettings: () => ({ deviceId: `${kind}-1` }), stop() {} };
}

/** Devices that grant a microphone and a camera, so the media state says both are on. */
function fakeDevices(): MediaDevices {
  const audio = fakeTrack("audio");
  const video = fakeTrack("video");
  return {
    getUserMedia: async () => ({ getAudioTracks: () => [audio], getVideoTracks: () => [video] }),
    enumerateDevices: async () => [],
  } as unknown as MediaDevices;
}

async function online(name = "me", devices?: MediaDevices) {
  const socket = new FakeSocket();
  const client = new SignalingClient("wss://x/ws", () => socket);
  const ready = client.connect(name);
  socket.open();
  socket.receive({
    type: "welcome",
    version: 1,
    id: "self",
    name,
    ice_servers: [],
    limits: LIMITS,
    resume_token: "t",
    account: null,
    resumed: null,
  });
  await ready;
  socket.sent.length = 0;
  const media = new LocalMedia(devices);
  if (devices !== undefined) await media.start();
  const factory = () => new FakePeerConnection("pc") as unknown as RTCPeerConnection;
  return { socket, client, media, factory };
}

const member = (id: string, name: string) => ({
  id,
  name,
  polite: true,
  media: { mic: true, camera: true, screen: false },
});

const joined = (extra: object = {}) => ({
  type: "joined",
  room: "r1",
  private: false,
  members: [member("ann", "Ann"), member("sam1", "Sam")],
  history: [],
  last_seq: 0,
  hosts: ["ann"],
  locked: false,
  lobby: false,
  protected: false,
  hands: [],
  ...extra,
});

const sentOf = (socket: FakeSocket, type: string) =>
  socket.sent.filter((m) => (m as { type: string }).type === type);

describe("RoomSession hosts", () => {
  it("presents the host key, invitation and password with the join", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1", { password: "pw", hostKey: "hk", invite: "inv.sig" });
    expect(socket.sent[0]).toMatchObject({
      type: "join",
      room: "r1",
      password: "pw",
      host_key: "hk",
      invite: "inv.sig",
    });
    const plain = await online();
    new RoomSession(plain.client, plain.media, plain.factory).join("r1");
    expect(plain.socket.sent[0]).not.toHaveProperty("host_key");
    expect(plain.socket.sent[0]).not.toHaveProperty("invite");
  });

  it("shows hosts, hands in order and names told apart", async () => {
    const { socket, client, media, factory } = await online("Sam");
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive(joined({ hands: ["sam1"] }));
    socket.receive({ type: "member_joined", room: "r1", member: member("sam3", "sam") });
    socket.receive({ type: "hands", room: "r1", raised: ["sam3", "self", "sam1"] });
    const snap = room.snapshot;
    expect(snap.isHost).toBe(false);
    expect(snap.selfLabel).toBe("Sam (2)"); // Ann and the first Sam were there first
    expect(snap.selfHand).toBe(2);
    expect(snap.members.map((m) => [m.id, m.label, m.host, m.hand])).toEqual([
      ["ann", "Ann", true, null],
      ["sam1", "Sam", false, 3],
      ["sam3", "sam (3)", false, 1],
    ]);
    socket.receive({
      type: "room_state",
      room: "r1",
      hosts: ["ann", "self"],
      locked: true,
      lobby: false,
      protected: true,
    });
    expect(room.snapshot).toMatchObject({ isHost: true, locked: true, protected: true });
  });

  it("sends host actions only from inside the room", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    expect(room.host.lock(true)).toBe(false);
    socket.receive(joined({ hosts: ["self"] }));
    socket.sent.length = 0;
    const { lock, setPassword, setLobby, admit, deny, makeHost, mute, lowerHand, remove, endMeeting } =
      room.host;
    lock(true); // unbound, as a button calls it
    setPassword("secret");
    setPassword("");
    setLobby(true);
    admit("k1");
    deny("k2");
    makeHost("ann");
    mute("ann", "camera");
    lowerHand("ann");
    remove("ann");
    room.raiseHand(true);
    endMeeting();
    expect(socket.sent).toEqual([
      { type: "room_lock", locked: true },
      { type: "room_password", password: "secret" },
      { type: "room_password", password: null },
      { type: "room_lobby", enabled: true },
      { type: "lobby_admit", id: "k1" },
      { type: "lobby_deny", id: "k2" },
      { type: "make_host", id: "ann" },
      { type: "mute", id: "ann", kind: "camera" },
      { type: "lower_hand", id: "ann" },
      { type: "remove", id: "ann" },
      { type: "hand", raised: true },
      { type: "end_meeting" },
    ]);
  });

  it("notes what hosts did, naming a removed member as they were shown", async () => {
    const { socket, client, media, factory } = await online("Sam");
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive(joined());
    socket.receive({ type: "member_joined", room: "r1", member: member("sam3", "Sam") });
    socket.receive({ type: "member_left", room: "r1", id: "sam3" });
    socket.receive({
      type: "room_event",
      room: "r1",
      action: "removed",
      by: "ann",
      by_name: "Ann",
      target: "sam3",
      target_name: "Sam",
    });
    expect(room.snapshot.notes.map((n) => n.text)).toEqual(["Ann removed Sam (3)"]);
  });
});

describe("RoomSession lobby", () => {
  it("waits in the lobby, then is let in", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({ type: "lobby_waiting", room: "r1" });
    expect(room.snapshot.phase).toBe("waiting");
    socket.receive({ type: "error", code: "already_joined", message: "waiting", ref: null });
    expect(room.snapshot.phase).toBe("waiting");
    socket.receive(joined());
    expect(room.snapshot.phase).toBe("joined");
    expect(room.snapshot.members).toHaveLength(2);
  });

  it("cancelling the knock sends leave", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({ type: "lobby_waiting", room: "r1" });
    room.leave();
    expect(socket.sent.at(-1)).toEqual({ type: "leave" });
    expect(room.snapshot.phase).toBe("left");
  });

  it("is turned away, or the meeting ends while it waits", async () => {
    for (const reason of ["denied", "ended"] as const) {
      const { socket, client, media, factory } = await online();
      const room = new RoomSession(client, media, factory);
      room.join("r1");
      socket.receive({ type: "lobby_waiting", room: "r1" });
      socket.receive({ type: "lobby_denied", room: "r1", reason });
      expect(room.snapshot).toMatchObject({ phase: "left", departure: { reason, by: null } });
    }
  });

  it("a host sees who waits, and forgets them when the room's snapshot comes again", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive(joined({ hosts: ["self"], lobby: true }));
    const waiting = [
      { id: "k1", name: "Kim", removed: false },
      { id: "k2", name: "Lee", removed: true },
    ];
    socket.receive({ type: "lobby", room: "r1", waiting });
    expect(room.snapshot.waiting).toEqual(waiting);
    socket.receive(joined({ hosts: ["self"], lobby: true }));
    expect(room.snapshot.waiting).toEqual([]);
  });
});

describe("RoomSession being put out", () => {
  it("records a removal and an ended meeting with the host's name", async () => {
    for (const reason of ["removed", "ended"] as const) {
      const { socket, client, media, factory } = await online();
      const room = new RoomSession(client, media, factory);
      room.join("r1");
      socket.receive(joined());
      socket.receive({ type: "left", room: "r1", reason, by: "ann", by_name: "Ann" });
      expect(room.snapshot).toMatchObject({ phase: "left", departure: { reason, by: "Ann" } });
      expect(room.snapshot.hands).toEqual([]);
    }
  });
});

describe("RoomSession obeys a host's mute", () => {
  it("turns the microphone off as its button does, says so, and announces it", async () => {
    const { socket, client, media, factory } = await online("me", fakeDevices());
    expect(media.state).toMatchObject({ micOn: true, cameraOn: true });
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive(joined());
    expect(sentOf(socket, "media").at(-1)).toEqual({ type: "media", mic: true, camera: true, screen: false });
    socket.receive({ type: "muted", room: "r1", kind: "mic", by: "ann", by_name: "Ann" });
    expect(media.state.micOn).toBe(false);
    expect(media.state.audio?.enabled).toBe(false); // the track sends silence, as with the button
    expect(sentOf(socket, "media").at(-1)).toEqual({
      type: "media",
      mic: false,
      camera: true,
      screen: false,
    });
    expect(room.snapshot.notes.at(-1)).toMatchObject({ text: "Ann muted your microphone", personal: true });

    socket.receive({ type: "muted", room: "r1", kind: "camera", by: "ann", by_name: "Ann" });
    expect(media.state.cameraOn).toBe(false);
    expect(sentOf(socket, "media").at(-1)).toEqual({
      type: "media",
      mic: false,
      camera: false,
      screen: false,
    });
    expect(room.snapshot.notes.at(-1)?.text).toBe("Ann turned off your camera");

    // Only the person turns it back on.
    media.setMicOn(true);
    expect(sentOf(socket, "media").at(-1)).toEqual({
      type: "media",
      mic: true,
      camera: false,
      screen: false,
    });
    await settle(2);
  });

  it("does nothing to the devices outside a room", async () => {
    const { socket, client, media, factory } = await online("me", fakeDevices());
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({ type: "muted", room: "r1", kind: "mic", by: "ann", by_name: "Ann" });
    expect(media.state.micOn).toBe(true);
    expect(room.snapshot.phase).toBe("joining");
  });
});

describe("CallSession names", () => {
  it("says when this side's name can no longer be called", async () => {
    const { socket, client, media } = await online("carla");
    const calls = new CallSession(client, media);
    expect(calls.snapshot.unreachable).toBeNull();
    socket.receive({ type: "unreachable", name: "carla" });
    expect(calls.snapshot.unreachable).toBe("carla");
  });
});
