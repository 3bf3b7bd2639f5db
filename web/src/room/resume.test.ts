import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ChatEntry, MemberInfo } from "../protocol";
import { LocalMedia } from "../rtc/media";
import { FakePeerConnection } from "../test/fakes";
import {
  RESUME_GRACE_SECONDS,
  connectedClient,
  resumeOn,
  welcome,
  type SocketFarm,
} from "../test/signalingFakes";
import { CALL_LOST_MESSAGE, CallSession } from "./call";
import { RoomSession } from "./session";

const NO_MEDIA = { mic: false, camera: false, screen: false };
const member = (id: string, name: string, media = NO_MEDIA) => ({
  id,
  name,
  polite: true,
  media,
  signed_in: false,
});
const entry = (seq: number, text: string, client_id: string | null = null, from = "m2") => ({
  room: "r1",
  id: `c${seq}`,
  seq,
  ts: 1_700_000_000_000 + seq,
  from,
  name: "bob",
  text,
  client_id,
});

async function inRoom(members = [member("m2", "bob")], history = [entry(1, "hi")]) {
  const { farm, client } = await connectedClient();
  const made: FakePeerConnection[] = [];
  const factory = () => {
    const pc = new FakePeerConnection(`pc${made.length}`);
    made.push(pc);
    return pc as unknown as RTCPeerConnection;
  };
  const room = new RoomSession(client, new LocalMedia(undefined), factory);
  room.join("r1", { password: "pw" });
  farm.last.receive({
    type: "joined",
    room: "r1",
    private: false,
    members,
    history,
    last_seq: history.at(-1)?.seq ?? 0,
  });
  farm.last.sent.length = 0;
  return { farm, client, room, made };
}

/** The `joined` snapshot the server sends after a resume's welcome (docs/PROTOCOL.md §2.8). */
function snapshot(farm: SocketFarm, members: MemberInfo[], history: ChatEntry[]): void {
  const last_seq = history.at(-1)?.seq ?? 0;
  farm.last.receive({ type: "joined", room: "r1", private: false, members, history, last_seq });
}

const ofType = (farm: SocketFarm, type: string) =>
  farm.last.sent.filter((m) => (m as { type: string }).type === type) as Record<string, unknown>[];

/** Move a fake connection to `state`, as the browser would. */
function becomes(pc: FakePeerConnection | undefined, state: RTCPeerConnectionState): void {
  if (pc === undefined) throw new Error("no such peer connection");
  pc.connectionState = state;
  pc.onconnectionstatechange?.();
}

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
});

describe("RoomSession while others reconnect", () => {
  it("marks a member reconnecting and back, keeping its peer connection", async () => {
    const { farm, room, made } = await inRoom();
    farm.last.receive({ type: "member_reconnecting", room: "r1", id: "m2" });
    expect(room.snapshot.members).toMatchObject([{ id: "m2", reconnecting: true }]);
    expect(made[0]?.closed).toBe(false);
    farm.last.receive({
      type: "member_resumed",
      room: "r1",
      member: member("m2", "bobby", { mic: true, camera: false, screen: false }),
    });
    expect(room.snapshot.members).toMatchObject([
      { id: "m2", name: "bobby", reconnecting: false, media: { mic: true } },
    ]);
    expect(made).toHaveLength(1);
    expect(made[0]?.closed).toBe(false);
  });

  it("adds an unknown resumed member, and treats member_joined for a known id as resumed", async () => {
    const { farm, room, made } = await inRoom();
    farm.last.receive({ type: "member_resumed", room: "r1", member: member("m3", "cy") });
    expect(room.snapshot.members.map((m) => m.id)).toEqual(["m2", "m3"]);
    expect(made).toHaveLength(2);
    farm.last.receive({ type: "member_reconnecting", room: "r1", id: "m2" });
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m2", "bob") });
    expect(room.snapshot.members.find((m) => m.id === "m2")?.reconnecting).toBe(false);
    expect(made).toHaveLength(2);
  });
});

describe("RoomSession through its own reconnect", () => {
  it("keeps the mesh while reconnecting and catches up after a resume", async () => {
    const { farm, room, made } = await inRoom();
    farm.last.drop(1006);
    expect(room.snapshot.reconnecting).toBe(true);
    expect(made[0]?.closed).toBe(false);
    resumeOn(farm, { room: "r1", missed: false });
    expect(room.snapshot.reconnecting).toBe(false);
    expect(ofType(farm, "history")).toEqual([]); // not before the snapshot that follows
    snapshot(farm, [member("m2", "bob")], [entry(1, "hi")]);
    expect(ofType(farm, "history")).toEqual([{ type: "history", since: 1 }]);
    expect(ofType(farm, "join")).toEqual([]);
    expect(made).toHaveLength(1);
    expect(made[0]?.closed).toBe(false);
  });

  it("reconciles the snapshot after a resume that missed messages, without tearing down", async () => {
    const { farm, room, made } = await inRoom([member("m2", "bob"), member("m3", "cy")], [entry(4, "d")]);
    becomes(made[0], "connected");
    becomes(made[1], "disconnected"); // consent checks failing while the network moved
    const restartIce = vi.fn();
    Object.assign(room.mesh, { restartIce });
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: true });
    expect(ofType(farm, "history")).toEqual([]); // not before the snapshot
    farm.last.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [member("m2", "bob"), member("m4", "di")],
      history: [entry(9, "i"), entry(10, "j")],
      last_seq: 10,
    });
    expect(room.snapshot.members.map((m) => [m.id, m.reconnecting])).toEqual([
      ["m2", false],
      ["m3", true], // not listed: given the grace window to come back
      ["m4", false],
    ]);
    expect(made.map((pc) => pc.closed)).toEqual([false, false, false]); // m2 and m3 kept, m4 new
    // What was missed between the last seq held (4) and the snapshot's history.
    expect(ofType(farm, "history")).toEqual([{ type: "history", since: 4 }]);
    farm.last.receive({
      type: "history",
      room: "r1",
      messages: [5, 6, 7, 8, 9].map((n) => entry(n, `m${n}`)),
      more: false,
    });
    expect(room.snapshot.chat.map((c) => c.seq)).toEqual([4, 5, 6, 7, 8, 9, 10]);
    // m3's connection is not connected: an ICE restart; m2's is fine; m4's is just starting.
    expect(restartIce.mock.calls).toEqual([["m3"]]);

    vi.advanceTimersByTime(RESUME_GRACE_SECONDS * 1000 - 1);
    expect(room.snapshot.members).toHaveLength(3);
    vi.advanceTimersByTime(1);
    expect(room.snapshot.members.map((m) => m.id)).toEqual(["m2", "m4"]);
    expect(made[1]?.closed).toBe(true);
  });

  it("keeps a member missing from the snapshot who comes back within the grace window", async () => {
    const { farm, room, made } = await inRoom([member("m2", "bob")]);
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: true });
    farm.last.receive({ type: "joined", room: "r1", private: false, members: [], history: [], last_seq: 1 });
    farm.last.receive({ type: "member_resumed", room: "r1", member: member("m2", "bob") });
    vi.advanceTimersByTime(RESUME_GRACE_SECONDS * 1000);
    expect(room.snapshot.members).toMatchObject([{ id: "m2", reconnecting: false }]);
    expect(made[0]?.closed).toBe(false);
  });

  it("resends undelivered chat with the same ids after a resume, and shows each seq once", async () => {
    const { farm, client, room } = await inRoom();
    expect(room.sendChat("one")).toBe(true);
    const [first] = ofType(farm, "chat");
    farm.last.drop(1006);
    expect(room.sendChat("two")).toBe(true); // waits: the place is not back yet
    expect(client.state).toBe("reconnecting");
    expect(room.snapshot.unsent.map((u) => u.text)).toEqual(["one", "two"]);
    const socket = resumeOn(farm, { room: "r1", missed: false });
    snapshot(farm, [member("m2", "bob")], [entry(1, "hi")]);
    const chats = ofType(farm, "chat");
    expect(chats.map((c) => [c.text, c.id === c.ref])).toEqual([
      ["one", true],
      ["two", true],
    ]);
    expect(chats[0]?.id).toBe(first?.id);
    // "one" was stored before the socket died: the kept echo, then the answer to the resend.
    const echo = { type: "chat", ...entry(2, "one", String(first?.id), "self") };
    socket.receive(echo);
    socket.receive(echo);
    socket.receive({ type: "chat", ...entry(3, "two", String(chats[1]?.id), "self") });
    expect(room.snapshot.chat.map((c) => c.text)).toEqual(["hi", "one", "two"]);
    expect(room.snapshot.unsent).toEqual([]);
  });

  it("stops resending a chat the server refused", async () => {
    const { farm, room } = await inRoom();
    room.sendChat("too much");
    const [sent] = ofType(farm, "chat");
    farm.last.receive({ type: "error", code: "invalid_text", message: "too long", ref: sent?.id });
    expect(room.snapshot.unsent).toEqual([]);
  });

  it("joins the same room again by itself when the place was lost", async () => {
    const { farm, room, made } = await inRoom();
    room.sendChat("pending");
    farm.last.drop(1006);
    const socket = farm.last;
    socket.open();
    socket.receive({ type: "error", code: "resume_failed", message: "gone", ref: null });
    socket.receive(welcome({ id: "self2", resume_token: "t9" }));
    expect(made[0]?.closed).toBe(true);
    expect(room.snapshot).toMatchObject({ selfId: "self2", reconnecting: true, members: [], lost: false });
    expect(ofType(farm, "join")).toEqual([
      { type: "join", room: "r1", password: "pw", media: { mic: false, camera: false, screen: false } },
    ]);
    socket.receive({
      type: "joined",
      room: "r1",
      private: false,
      members: [member("m2", "bob")],
      history: [entry(1, "hi"), entry(2, "while away")],
      last_seq: 2,
    });
    expect(room.snapshot.reconnecting).toBe(false);
    expect(made).toHaveLength(2);
    expect(room.snapshot.chat.map((c) => c.seq)).toEqual([1, 2]);
    expect(ofType(farm, "chat").map((c) => c.text)).toEqual(["pending"]);
  });

  it("shows the room as lost only when rejoining fails, or the client gives up", async () => {
    const first = await inRoom();
    first.farm.last.drop(1006);
    first.farm.last.open();
    first.farm.last.receive({ type: "error", code: "resume_failed", message: "gone", ref: null });
    first.farm.last.receive(welcome({ id: "self2" }));
    expect(first.room.snapshot.lost).toBe(false);
    first.farm.last.receive({ type: "error", code: "room_full", message: "The room is full.", ref: null });
    expect(first.room.snapshot).toMatchObject({
      lost: true,
      lostReason: "rejoin_failed",
      reconnecting: false,
    });

    const second = await inRoom();
    second.farm.last.drop(4005);
    expect(second.room.snapshot).toMatchObject({ lost: true, lostReason: "replaced" });
    expect(second.made[0]?.closed).toBe(true);

    const signedOut = await inRoom();
    signedOut.farm.last.drop(4006);
    expect(signedOut.room.snapshot).toMatchObject({
      lost: true,
      lostReason: "signed_out",
      reconnecting: false,
    });
    expect(signedOut.made[0]?.closed).toBe(true);
    vi.advanceTimersByTime(60_000);
    expect(signedOut.farm.sockets).toHaveLength(1); // no new socket: it would be a guest's

    const third = await inRoom();
    third.farm.last.drop(1006);
    for (let i = 0; i < 400 && third.client.state === "reconnecting"; i++) {
      third.farm.last.drop(1006);
      vi.advanceTimersByTime(1000);
    }
    expect(third.room.snapshot).toMatchObject({ lost: true, lostReason: "lost", reconnecting: false });
  });

  it("asks for fresh ICE servers for a restart", async () => {
    const { farm, room } = await inRoom();
    const fresh = room.freshIceServers();
    expect(ofType(farm, "ice_refresh")).toHaveLength(1);
    farm.last.receive({
      type: "ice_servers",
      ice_servers: [{ urls: ["turn:t:3478"], username: "u", credential: "p" }],
      ref: null,
    });
    await expect(fresh).resolves.toEqual([{ urls: ["turn:t:3478"], username: "u", credential: "p" }]);
    const unanswered = room.freshIceServers();
    vi.advanceTimersByTime(5_000);
    await expect(unanswered).resolves.toBeNull();
  });
});

describe("CallSession through a reconnect", () => {
  async function inCall() {
    const { farm, client } = await connectedClient("alice");
    const made: FakePeerConnection[] = [];
    const factory = () => {
      const pc = new FakePeerConnection(`pc${made.length}`);
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    };
    const calls = new CallSession(client, new LocalMedia(undefined), factory);
    calls.call("bob");
    farm.last.receive({ type: "ringing", call: "c1", name: "bob" });
    farm.last.receive({ type: "call_accepted", call: "c1", room: "call-x" });
    farm.last.receive({
      type: "joined",
      room: "call-x",
      private: true,
      members: [member("m2", "bob")],
      history: [],
      last_seq: 0,
    });
    farm.last.sent.length = 0;
    return { farm, client, calls, made };
  }

  it("survives a resume like a room, and asks for presence again after missed messages", async () => {
    const { farm, calls, made } = await inCall();
    farm.last.drop(1006);
    expect(calls.snapshot.room?.snapshot.reconnecting).toBe(true);
    resumeOn(farm, { room: "call-x", missed: true });
    expect(calls.snapshot.phase).toBe("in_call");
    expect(made[0]?.closed).toBe(false);
    expect(ofType(farm, "presence_watch")).toEqual([{ type: "presence_watch", watch: true }]);
  });

  it("catches up after a resume in a call: resends chat typed while away, asks history", async () => {
    const { farm, calls } = await inCall();
    const room = calls.snapshot.room;
    farm.last.drop(1006);
    expect(room?.sendChat("typed while away")).toBe(true);
    resumeOn(farm, { room: "call-x", missed: true });
    farm.last.receive({
      type: "joined",
      room: "call-x",
      private: true,
      members: [member("m2", "bob")],
      history: [],
      last_seq: 0,
    });
    expect(ofType(farm, "history")).toEqual([{ type: "history", since: 0 }]);
    expect(ofType(farm, "chat").map((c) => c.text)).toEqual(["typed while away"]);
    expect(calls.snapshot.phase).toBe("in_call");
  });

  it("ends the call when the place was lost, and watches presence again", async () => {
    const { farm, calls, made } = await inCall();
    farm.last.drop(1006);
    farm.last.open();
    farm.last.receive({ type: "error", code: "resume_failed", message: "gone", ref: null });
    farm.last.receive(welcome({ id: "new", name: "alice" }));
    expect(calls.snapshot).toMatchObject({
      phase: "idle",
      room: null,
      outcome: { reason: "lost", message: CALL_LOST_MESSAGE },
    });
    expect(made[0]?.closed).toBe(true);
    expect(ofType(farm, "presence_watch")).toEqual([{ type: "presence_watch", watch: true }]);
    expect(ofType(farm, "join")).toEqual([]); // a call's room is not joined again
  });

  it("ends the call when the resumed place has no room any more", async () => {
    const { farm, calls } = await inCall();
    farm.last.drop(1006);
    resumeOn(farm, { room: null, missed: false });
    expect(calls.snapshot.outcome?.message).toBe(CALL_LOST_MESSAGE);
  });

  it("keeps a reconnecting name online", async () => {
    const { farm, calls } = await inCall();
    farm.last.receive({ type: "presence", names: ["alice", "bob"] });
    farm.last.receive({ type: "presence_changed", name: "bob", online: true, reconnecting: true });
    expect(calls.snapshot.online).toEqual(["alice", "bob"]);
  });
});

describe("RoomSession waiting in a lobby across a reconnect", () => {
  it("knocks again when the resumed place may have lost its knock", async () => {
    const { farm, client } = await connectedClient();
    const factory = () => new FakePeerConnection("pc") as unknown as RTCPeerConnection;
    const room = new RoomSession(client, new LocalMedia(undefined), factory);
    room.join("r1");
    farm.last.receive({ type: "lobby_waiting", room: "r1" });
    farm.last.drop(1006);
    resumeOn(farm, { room: null, missed: false });
    expect(ofType(farm, "join")).toEqual([]); // the place was held whole: its knock stands
    farm.last.drop(1006);
    // Rebuilt after a restart (a token holds no knock), or an admission or denial missed.
    resumeOn(farm, { room: null, missed: true });
    expect(ofType(farm, "join")).toMatchObject([{ type: "join", room: "r1" }]);
    expect(room.snapshot.phase).toBe("waiting");
    farm.last.receive({ type: "lobby_waiting", room: "r1" });
    expect(room.snapshot.phase).toBe("waiting");
    room.dispose();
  });
});
