import { afterEach, describe, expect, it, vi } from "vitest";
import { LocalMedia } from "../rtc/media";
import { SignalingClient } from "../signaling/client";
import { FakePeerConnection, FakeSocket, LIMITS } from "../test/fakes";
import { CallSession, RING_MARGIN_MS } from "./call";
import { RoomSession } from "./session";

async function online(name = "me", ice_servers: object[] = []) {
  const socket = new FakeSocket();
  const client = new SignalingClient("wss://x/ws", () => socket);
  const ready = client.connect(name);
  socket.open();
  socket.receive({
    type: "welcome",
    version: 1,
    id: "self",
    name,
    ice_servers,
    limits: LIMITS,
    resume_token: "t",
  });
  await ready;
  socket.sent.length = 0;
  const media = new LocalMedia(undefined); // no devices: a receive-only member
  const made: FakePeerConnection[] = [];
  const factory = (config: RTCConfiguration) => {
    const pc = new FakePeerConnection(`pc${made.length}`);
    pc.configuration = config;
    made.push(pc);
    return pc as unknown as RTCPeerConnection;
  };
  return { socket, client, media, made, factory };
}

const entry = (seq: number, text: string, from = "m2") => ({
  room: "r",
  id: `c${seq}`,
  seq,
  ts: 1_700_000_000_000 + seq,
  from,
  name: "bob",
  text,
});

/** The server's answer to bob's accept of alice's call c1: its room, call-x, seats him. */
function callAccepted(socket: FakeSocket): void {
  socket.receive({ type: "call_accepted", call: "c1", room: "call-x" });
  socket.receive({
    type: "joined",
    room: "call-x",
    private: true,
    members: [{ id: "m1", name: "alice", polite: true, media: { mic: true, camera: true, screen: false } }],
    history: [],
    last_seq: 0,
  });
}

describe("RoomSession", () => {
  it("joins with its media state, then connects to every member", async () => {
    const { socket, client, media, made, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    expect(socket.sent[0]).toEqual({
      type: "join",
      room: "r1",
      media: { mic: false, camera: false, screen: false },
    });
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [{ id: "m2", name: "bob", polite: true, media: { mic: true, camera: false, screen: false } }],
      history: [entry(1, "hi")],
      last_seq: 1,
    });
    expect(room.snapshot.phase).toBe("joined");
    expect(room.snapshot.members.map((m) => [m.name, m.media.mic])).toEqual([["bob", true]]);
    expect(room.snapshot.chat.map((c) => c.text)).toEqual(["hi"]);
    expect(made).toHaveLength(1);
    socket.receive({
      type: "member_joined",
      room: "r1",
      member: { id: "m3", name: "cy", polite: false, media: { mic: false, camera: false, screen: false } },
    });
    socket.receive({ type: "media", from: "m3", mic: true, camera: true, screen: false });
    expect(room.snapshot.members.find((m) => m.id === "m3")?.media.camera).toBe(true);
    socket.receive({ type: "member_left", room: "r1", id: "m2" });
    expect(room.snapshot.members.map((m) => m.id)).toEqual(["m3"]);
    expect(made[0]?.closed).toBe(true);
  });

  it("shows a member who signed in again in its older place's stead, where it was", async () => {
    const { socket, client, media, made, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    const info = (id: string, name: string) => ({
      id,
      name,
      polite: true,
      media: { mic: true, camera: true, screen: false },
    });
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [info("m2", "bob"), info("m3", "cy")],
      history: [],
      last_seq: 0,
    });
    socket.receive({ type: "member_joined", room: "r1", member: info("m4", "bob"), replaces: "m2" });
    // One tile for bob throughout, first as before; the older place's connection is closed.
    expect(room.snapshot.members.map((m) => [m.id, m.label])).toEqual([
      ["m4", "bob"],
      ["m3", "cy"],
    ]);
    expect(made.map((pc) => pc.closed)).toEqual([true, false, false]);
    // The newcomer remembers whom it replaced (a pin follows it), across a second takeover.
    expect(room.snapshot.members.map((m) => m.formerIds)).toEqual([["m2"], []]);
    socket.receive({ type: "member_joined", room: "r1", member: info("m5", "bob"), replaces: "m4" });
    expect(room.snapshot.members.map((m) => [m.id, m.formerIds])).toEqual([
      ["m5", ["m2", "m4"]],
      ["m3", []],
    ]);
    socket.receive({ type: "member_left", room: "r1", id: "m2" }); // the older place ends
    expect(room.snapshot.members.map((m) => m.id)).toEqual(["m5", "m3"]);
    expect(made.map((pc) => pc.closed)).toEqual([true, false, true, false]); // m2, m3, m4, m5
  });

  it("keeps chat in seq order without duplicates", async () => {
    const { socket, client, media, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [],
      history: [entry(2, "b")],
      last_seq: 2,
    });
    socket.receive({ type: "chat", ...entry(3, "c") });
    socket.receive({ type: "history", room: "r1", messages: [entry(1, "a"), entry(2, "b")], more: false });
    expect(room.snapshot.chat.map((c) => c.text)).toEqual(["a", "b", "c"]);
    expect(room.sendChat("  ")).toBe(false);
    expect(room.sendChat("hello")).toBe(true);
    const sent = socket.sent.at(-1) as { id: string };
    expect(sent).toEqual({ type: "chat", text: "hello", id: sent.id, ref: sent.id });
    expect(sent.id).toMatch(/^[A-Za-z0-9_-]{16}$/);
    expect(room.snapshot.unsent).toEqual([{ id: sent.id, text: "hello" }]);
  });

  it("reports a refused join, and reconnects (not lost) when the socket drops in the room", async () => {
    const first = await online();
    const refused = new RoomSession(first.client, first.media, first.factory);
    refused.join("r1");
    first.socket.receive({ type: "error", code: "room_full", message: "full" });
    expect(refused.snapshot.phase).toBe("failed");
    expect(refused.snapshot.problem?.code).toBe("room_full");

    const second = await online();
    const room = new RoomSession(second.client, second.media, second.factory);
    room.join("r1");
    second.socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [],
      history: [],
      last_seq: 0,
    });
    second.socket.drop(1006);
    expect(room.snapshot).toMatchObject({ reconnecting: true, lost: false, phase: "joined" });
  });
});

describe("RoomSession ICE servers", () => {
  it("applies fresh ICE servers (TURN credentials) to open connections", async () => {
    const { socket, client, media, made, factory } = await online();
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [{ id: "m2", name: "bob", polite: true, media: { mic: true, camera: true, screen: false } }],
      history: [],
      last_seq: 0,
    });
    socket.receive({
      type: "ice_servers",
      ice_servers: [{ urls: ["turn:t:3478"], username: "u", credential: "p" }],
      ref: null,
    });
    expect(made[0]?.configuration.iceServers).toEqual([
      { urls: ["turn:t:3478"], username: "u", credential: "p" },
    ]);
    room.dispose();
  });
});

describe("RoomSession TURN credential refresh", () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  const NOW_S = 1_800_000_000;
  const turn = (expiryS: number) => ({
    urls: ["turn:t:3478?transport=udp"],
    username: `${expiryS}:self`,
    credential: "pw",
  });
  /** Let time pass while the server pings now and then, as it does on a quiet connection. */
  const advance = (socket: FakeSocket, ms: number) => {
    for (let left = ms; left > 0; left -= 30_000) {
      vi.advanceTimersByTime(Math.min(30_000, left));
      socket.receive({ type: "ping" });
    }
  };
  const refreshes = (sent: unknown[]) => sent.filter((m) => (m as { type: string }).type === "ice_refresh");

  it("asks at half the credential's remaining life, then applies and reschedules", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW_S * 1000);
    const { socket, client, media, made, factory } = await online("me", [
      { urls: ["stun:s:3478"], username: null, credential: null },
      turn(NOW_S + 6 * 3600),
    ]);
    const room = new RoomSession(client, media, factory);
    room.join("r1");
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [{ id: "m2", name: "bob", polite: true, media: { mic: true, camera: true, screen: false } }],
      history: [],
      last_seq: 0,
    });
    // The browser gets no null members.
    expect(made[0]?.configuration).toMatchObject({
      iceServers: [
        { urls: ["stun:s:3478"] },
        { urls: ["turn:t:3478?transport=udp"], username: `${NOW_S + 21600}:self` },
      ],
    });
    made[0]!.configuration = { ...made[0]!.configuration, iceTransportPolicy: "relay" };
    advance(socket, 3 * 3600_000 - 1000);
    expect(refreshes(socket.sent)).toHaveLength(0);
    advance(socket, 1000);
    expect(refreshes(socket.sent)).toHaveLength(1);
    // Three hours on, the answer carries credentials valid six hours from then.
    const later = NOW_S + 3 * 3600;
    socket.receive({ type: "ice_servers", ice_servers: [turn(later + 6 * 3600)], ref: null });
    expect(made[0]?.configuration).toMatchObject({
      iceTransportPolicy: "relay", // the rest of the configuration is kept
      iceServers: [
        { urls: ["turn:t:3478?transport=udp"], username: `${later + 21600}:self`, credential: "pw" },
      ],
    });
    advance(socket, 3 * 3600_000 - 1000);
    expect(refreshes(socket.sent)).toHaveLength(1);
    advance(socket, 1000);
    expect(refreshes(socket.sent)).toHaveLength(2);
    room.dispose();
    advance(socket, 24 * 3600_000);
    expect(refreshes(socket.sent)).toHaveLength(2);
  });

  it("never refreshes sooner than a minute, even with credentials about to expire", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW_S * 1000);
    const { socket, client, media, factory } = await online("me", [turn(NOW_S + 30)]);
    const room = new RoomSession(client, media, factory);
    advance(socket, 59_999);
    expect(refreshes(socket.sent)).toHaveLength(0);
    advance(socket, 1);
    expect(refreshes(socket.sent)).toHaveLength(1);
    room.dispose();
  });

  it("keeps them fresh on the call page while it waits, and a call's room starts with the newest", async () => {
    vi.useFakeTimers();
    vi.setSystemTime(NOW_S * 1000);
    const { socket, client, media, made, factory } = await online("bob", [turn(NOW_S + 6 * 3600)]);
    const calls = new CallSession(client, media, factory);
    advance(socket, 3 * 3600_000);
    expect(refreshes(socket.sent)).toHaveLength(1); // at half their life, with no call
    const later = NOW_S + 3 * 3600;
    socket.receive({ type: "ice_servers", ice_servers: [turn(later + 6 * 3600)], ref: null });
    advance(socket, 2 * 3600_000);
    socket.receive({ type: "incoming_call", call: "c1", from: "m1", name: "alice" });
    calls.accept();
    callAccepted(socket);
    // The welcome's credentials expired an hour ago: the call's connection has the new ones.
    expect(made[0]?.configuration).toMatchObject({
      iceServers: [{ urls: ["turn:t:3478?transport=udp"], username: `${later + 21600}:self` }],
    });
    calls.dispose();
  });

  it("does not refresh without TURN credentials", async () => {
    vi.useFakeTimers();
    const { socket, client, media, factory } = await online("me", [
      { urls: ["stun:s:3478"], username: null, credential: null },
    ]);
    const room = new RoomSession(client, media, factory);
    advance(socket, 48 * 3600_000);
    expect(refreshes(socket.sent)).toHaveLength(0);
    room.dispose();
  });
});

describe("CallSession", () => {
  it("tracks who is online", async () => {
    const { socket, client, media } = await online("me");
    const calls = new CallSession(client, media);
    expect(socket.sent[0]).toEqual({ type: "presence_watch", watch: true });
    socket.receive({ type: "presence", names: ["me", "bob"] });
    socket.receive({ type: "presence_changed", name: "amy", online: true });
    socket.receive({ type: "presence_changed", name: "bob", online: false });
    expect(calls.snapshot.online).toEqual(["amy", "me"]);
  });

  it("rings out and reports a decline", async () => {
    const { socket, client, media } = await online("alice");
    const calls = new CallSession(client, media);
    calls.call("bob");
    expect(socket.sent.at(-1)).toEqual({ type: "call", name: "bob" });
    socket.receive({ type: "ringing", call: "c1", name: "bob" });
    expect(calls.snapshot.phase).toBe("ringing");
    socket.receive({ type: "call_ended", call: "c1", reason: "declined" });
    expect(calls.snapshot.phase).toBe("idle");
    expect(calls.snapshot.outcome).toMatchObject({ reason: "declined", message: "bob declined the call." });
  });

  it("reports busy and nobody-online answers to a call", async () => {
    const { socket, client, media } = await online("alice");
    const calls = new CallSession(client, media);
    calls.call("bob");
    socket.receive({ type: "call_ended", call: "c9", reason: "busy" });
    expect(calls.snapshot.outcome?.reason).toBe("busy");
    calls.call("zed");
    socket.receive({ type: "error", code: "not_online", message: "nobody called 'zed' is online" });
    expect(calls.snapshot.outcome?.reason).toBe("not_online");
    expect(calls.snapshot.phase).toBe("idle");
  });

  it("answers an incoming call into the call's room, and hangs up", async () => {
    const { socket, client, media, factory } = await online("bob");
    const calls = new CallSession(client, media, factory);
    socket.receive({ type: "incoming_call", call: "c1", from: "m1", name: "alice" });
    expect(calls.snapshot).toMatchObject({ phase: "incoming", peer: "alice" });
    calls.accept();
    expect(socket.sent.at(-1)).toEqual({ type: "call_accept", call: "c1" });
    callAccepted(socket);
    const room = calls.snapshot.room;
    expect(calls.snapshot.phase).toBe("in_call");
    expect(room?.snapshot.members.map((m) => m.name)).toEqual(["alice"]);
    socket.receive({ type: "call_ended", call: "c1", reason: "hangup" });
    expect(calls.snapshot.phase).toBe("idle");
    expect(calls.snapshot.outcome?.message).toBe("alice hung up.");
  });

  it("takes the call of someone it is calling at the same moment", async () => {
    const { socket, client, media } = await online("bob");
    const calls = new CallSession(client, media);
    calls.call("alice");
    socket.receive({ type: "incoming_call", call: "c1", from: "m1", name: "alice" });
    socket.receive({ type: "error", code: "in_call", message: "answer or cancel your ringing call first" });
    expect(calls.snapshot).toMatchObject({ phase: "incoming", peer: "alice", callId: "c1" });
    calls.accept();
    expect(socket.sent.at(-1)).toEqual({ type: "call_accept", call: "c1" });
    calls.dispose();
  });

  it("gives up a ringing call whose end never comes, and one the server no longer knows", async () => {
    const { socket, client, media } = await online("alice");
    vi.useFakeTimers();
    try {
      const calls = new CallSession(client, media);
      calls.call("bob");
      socket.receive({ type: "ringing", call: "c1", name: "bob" });
      // Its call_ended was lost (missed while away, §2.8): ring_seconds and a margin later,
      // this side stops ringing by itself.
      vi.advanceTimersByTime(LIMITS.ring_seconds * 1000 + RING_MARGIN_MS - 1);
      expect(calls.snapshot.phase).toBe("ringing");
      vi.advanceTimersByTime(1);
      expect(calls.snapshot).toMatchObject({ phase: "idle", outcome: { reason: "lost" } });
      // An incoming call that ended meanwhile: accepting it gets no_such_call (§4.5).
      socket.receive({ type: "incoming_call", call: "c2", from: "m3", name: "carol" });
      calls.accept();
      socket.receive({ type: "error", code: "no_such_call", message: "no such call" });
      expect(calls.snapshot).toMatchObject({ phase: "idle", outcome: { reason: "lost" } });
      // An answered call is not given up.
      calls.call("dan");
      socket.receive({ type: "call_ended", call: "c3", reason: "declined" });
      vi.advanceTimersByTime(LIMITS.ring_seconds * 1000 + RING_MARGIN_MS);
      expect(calls.snapshot.outcome?.reason).toBe("declined");
      calls.dispose();
    } finally {
      vi.useRealTimers();
    }
  });
});
