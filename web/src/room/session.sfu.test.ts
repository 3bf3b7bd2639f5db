import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { MemberInfo } from "../protocol";
import { LAYER_DEBOUNCE_MS } from "../rtc/layers";
import { LocalMedia } from "../rtc/media";
import { FakePeerConnection, settle } from "../test/fakes";
import { connectedClient, resumeOn, type SocketFarm } from "../test/signalingFakes";
import { RoomSession } from "./session";

const NO_MEDIA = { mic: false, camera: false, screen: false };
const member = (id: string, name: string): MemberInfo => ({
  id,
  name,
  polite: true,
  media: NO_MEDIA,
  signed_in: false,
});

class FakeStream {
  constructor(readonly tracks: unknown[] = []) {}
}

/**
 * A RoomSession in room r1 (a mesh, or on the SFU with `sfu`), with bob in it.
 * `beforeSession` runs once the client is connected, before the session is made.
 */
async function inRoom(sfu: boolean, beforeSession: () => void = () => {}) {
  const { farm, client, network } = await connectedClient();
  beforeSession();
  const made: FakePeerConnection[] = [];
  const factory = (config: RTCConfiguration) => {
    const pc = new FakePeerConnection(`pc${made.length}`);
    pc.configuration = config;
    made.push(pc);
    return pc as unknown as RTCPeerConnection;
  };
  const room = new RoomSession(client, new LocalMedia(undefined), factory);
  room.join("r1");
  farm.last.receive(joined([member("m2", "bob")], sfu));
  return { farm, room, made, network };
}

const joined = (members: MemberInfo[], sfu: boolean) => ({
  type: "joined",
  room: "r1",
  private: false,
  members,
  history: [],
  last_seq: 0,
  hosts: [],
  locked: false,
  lobby: false,
  protected: false,
  hands: [],
  sfu,
});

const sentOf = (farm: SocketFarm, type: string) =>
  farm.sockets.flatMap((s) => s.sent).filter((m) => (m as { type: string }).type === type);

/** The server's answer to this side's `sfu_publish`. */
const ANSWER = { type: "sfu_answer", description: { type: "answer", sdp: "sfu answer" } };

/** bob's media as he announces it: his microphone on. */
const BOB_MIC_ON = { type: "media", from: "m2", mic: true, camera: false, screen: false };

/** The SFU's offer for the subscriber: bob's audio and video. */
const BOB_OFFER = {
  type: "sfu_offer",
  description: {
    type: "offer",
    sdp: [
      "v=0",
      "o=- 9 1 IN IP4 0.0.0.0",
      "m=audio 9 X 111",
      "a=mid:a0",
      "m=video 9 X 96",
      "a=mid:v0",
      "",
    ].join("\r\n"),
  },
  streams: [
    { mid: "a0", member: "m2", kind: "audio", screen: false },
    { mid: "v0", member: "m2", kind: "video", screen: false },
  ],
};

beforeEach(() => {
  (globalThis as { MediaStream?: unknown }).MediaStream = FakeStream;
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
  vi.unstubAllGlobals();
  delete (globalThis as { MediaStream?: unknown }).MediaStream;
});

describe("RoomSession in a room on the SFU", () => {
  it("makes no peer connection to members, and takes their media from the SFU", async () => {
    const { farm, room, made } = await inRoom(true);
    await settle();
    expect(room.sfu.active).toBe(true);
    expect(made).toHaveLength(1); // the publisher, not a connection to bob
    expect(made[0]?.configuration).toMatchObject({ bundlePolicy: "max-bundle" });
    expect(sentOf(farm, "sfu_publish")).toHaveLength(1);
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m3", "cy") });
    farm.last.receive({ type: "signal", from: "m2", description: { type: "offer", sdp: "late" } });
    await settle();
    expect(made).toHaveLength(1);
    expect(room.snapshot.members.map((m) => [m.id, m.camera])).toEqual([
      ["m2", null],
      ["m3", null],
    ]);
    farm.last.receive(BOB_OFFER);
    await settle();
    expect(made).toHaveLength(2); // the subscriber
    expect(sentOf(farm, "sfu_subscribe")).toHaveLength(1);
    const [bob, cy] = room.snapshot.members;
    expect(bob?.camera).toBeInstanceOf(FakeStream);
    expect(cy?.camera).toBeNull();
    made[1]?.setIceState("connected");
    // cy sends nothing: as connected as the path to the SFU, not "Connecting…" for good.
    expect(room.snapshot.members.map((m) => m.connection)).toEqual(["connected", "connected"]);
    expect(Object.keys(await room.stats())).toEqual(["bob"]);
    expect(Object.keys(await room.mediaStats())).toEqual(["m2"]);
  });

  it("moves a mesh room to the SFU on room_media, and starts again from scratch on a second", async () => {
    const { farm, room, made } = await inRoom(false);
    expect(made).toHaveLength(1); // the mesh connection to bob
    farm.last.receive({ type: "room_media", room: "other", sfu: true });
    expect(room.sfu.active).toBe(false);
    farm.last.receive({ type: "room_media", room: "r1", sfu: true });
    await settle();
    expect(made[0]?.closed).toBe(true);
    expect(room.sfu.active).toBe(true);
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m3", "cy") });
    farm.last.receive(BOB_OFFER);
    await settle();
    expect(made).toHaveLength(3); // publisher and subscriber, nobody's own
    farm.last.receive({ type: "room_media", room: "r1", sfu: true }); // the SFU restarted
    await settle();
    expect(made.map((pc) => pc.closed)).toEqual([true, true, true, false]);
    expect(sentOf(farm, "sfu_subscribe")).toHaveLength(1);
    expect(sentOf(farm, "sfu_publish")).toHaveLength(2);
    expect(room.snapshot.members.map((m) => m.camera)).toEqual([null, null]);
  });

  it("keeps both SFU connections through a resume, and restarts no ICE", async () => {
    const { farm, room, made } = await inRoom(true);
    farm.last.receive(BOB_OFFER);
    await settle();
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: true });
    farm.last.receive(joined([member("m2", "bob")], true));
    await settle();
    expect(made).toHaveLength(2);
    expect(made.map((pc) => [pc.closed, pc.restarts])).toEqual([
      [false, 0],
      [false, 0],
    ]);
    expect(sentOf(farm, "sfu_publish")).toHaveLength(1);
    expect(room.sfu.active).toBe(true);
  });

  it("follows a resume's snapshot that says the room moved to the SFU meanwhile", async () => {
    const { farm, room, made } = await inRoom(false);
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: true }); // the room_media was lost with the socket
    farm.last.receive(joined([member("m2", "bob")], true));
    await settle();
    expect(made[0]?.closed).toBe(true);
    expect(room.sfu.active).toBe(true);
    expect(made).toHaveLength(2);
  });

  it("retries a refused publish without telling the person", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { farm, room } = await inRoom(true);
    await settle();
    vi.useFakeTimers();
    farm.last.receive({
      type: "error",
      code: "sfu_unavailable",
      message: "the SFU refused",
      ref: "sfu-publish",
    });
    farm.last.receive({ type: "error", code: "not_sfu_room", message: "mesh", ref: "sfu-candidate" });
    expect(room.snapshot.problem).toBeNull();
    await vi.advanceTimersByTimeAsync(1_010);
    expect(sentOf(farm, "sfu_publish")).toHaveLength(2);
  });

  it("closes the SFU connections on leaving, and joins a mesh room with peer connections again", async () => {
    const { farm, room, made } = await inRoom(true);
    farm.last.receive(BOB_OFFER);
    await settle();
    room.leave();
    expect(made.map((pc) => pc.closed)).toEqual([true, true]);
    expect(room.sfu.active).toBe(false);
    room.join("r1");
    farm.last.receive(joined([member("m2", "bob")], false));
    expect(made).toHaveLength(3);
    expect(room.sfu.active).toBe(false);
  });
});

/** What the server says when the SFU hears a member start or stop talking. */
const talking = (member: string, on: boolean, room = "r1") => ({
  type: "talking",
  room,
  member,
  talking: on,
});

describe("RoomSession: talking", () => {
  it("on the SFU, who speaks is what the SFU hears, until it stops or leaves", async () => {
    const { farm, room } = await inRoom(true);
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m3", "cy") });
    expect(room.talking).toEqual(new Set());
    farm.last.receive(talking("m2", true));
    farm.last.receive(talking("m3", true));
    farm.last.receive(talking("self", true)); // this side's own: its meter tells
    farm.last.receive(talking("m9", true)); // nobody known
    farm.last.receive(talking("m2", true, "other"));
    expect(room.talking).toEqual(new Set(["m2", "m3"]));
    farm.last.receive(talking("m2", false));
    expect(room.talking).toEqual(new Set(["m3"]));
    farm.last.receive({ type: "member_left", room: "r1", id: "m3" });
    expect(room.talking).toEqual(new Set());
    farm.last.receive(talking("m2", true));
    farm.last.receive({ type: "room_media", room: "r1", sfu: true }); // the SFU restarted
    expect(room.talking).toEqual(new Set());
  });

  it("drops who the SFU's offer lists no audio for, and everyone after a resume that missed messages", async () => {
    const { farm, room } = await inRoom(true);
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m3", "cy") });
    farm.last.receive(talking("m2", true));
    farm.last.receive(talking("m3", true));
    farm.last.receive(BOB_OFFER); // cy stopped publishing, talking: Janus never says she stopped
    expect(room.talking).toEqual(new Set(["m2"]));
    farm.last.receive(talking("m3", true));
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: false }); // nothing missed: still talking
    expect(room.talking).toEqual(new Set(["m2", "m3"]));
    farm.last.drop(1006);
    resumeOn(farm, { room: "r1", missed: true }); // a `talking: false` may have been lost
    expect(room.talking).toEqual(new Set());
    await settle();
  });

  it("in a mesh room, the levels tell: talking is null and its messages change nothing", async () => {
    const { farm, room } = await inRoom(false);
    farm.last.receive(talking("m2", true));
    expect(room.talking).toBeNull();
    farm.last.receive({ type: "room_media", room: "r1", sfu: true });
    expect(room.talking).toEqual(new Set()); // what came before the move is not kept
  });
});

describe("RoomSession: simulcast layers", () => {
  const layers = (farm: SocketFarm) =>
    sentOf(farm, "sfu_quality").map((m) => {
      const { member: id, quality } = m as { member: string; quality: string };
      return `${id} ${quality}`;
    });

  it("asks for each member's layer from their tile's size: on the SFU only, not for who left", async () => {
    const { farm, room } = await inRoom(false);
    vi.useFakeTimers();
    room.showVideo("m2", 150);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(layers(farm)).toEqual([]); // a mesh room
    farm.last.receive({ type: "room_media", room: "r1", sfu: true });
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sentOf(farm, "sfu_quality")).toEqual([
      { type: "sfu_quality", member: "m2", quality: "low", ref: "sfu-quality:m2" },
    ]);
    farm.last.receive({ type: "member_joined", room: "r1", member: member("m3", "cy") });
    room.showVideo("m3", 700); // high: what the SFU sends anyway
    farm.last.receive({ type: "member_left", room: "r1", id: "m2" });
    room.showVideo("m2", null); // bob's tile goes
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(layers(farm)).toEqual(["m2 low"]);
    room.showVideo("m3", 300);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(layers(farm)).toEqual(["m2 low", "m3 low"]);
  });

  it("does not tell the person about a refused layer request", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { farm, room } = await inRoom(true);
    farm.last.receive({ type: "error", code: "sfu_unavailable", message: "no", ref: "sfu-quality:m2" });
    expect(room.snapshot.problem).toBeNull();
  });
});

describe("RoomSession: the path to the SFU", () => {
  it("is in the snapshot and in window.__salon, with who is talking", async () => {
    const hook: { location: { search: string }; __salon?: { sfuState(): string; talking(): string[] } } = {
      location: { search: "" },
    };
    const { farm, room, made } = await inRoom(true, () => vi.stubGlobal("window", hook));
    vi.unstubAllGlobals();
    expect(room.snapshot.sfu).toBe("connecting");
    expect(hook.__salon?.sfuState()).toBe("connecting");
    farm.last.receive(BOB_MIC_ON);
    await settle();
    farm.last.receive(ANSWER);
    await settle();
    made[0]?.setIceState("connected");
    expect(room.snapshot.sfu).toBe("connecting"); // bob's media is due
    farm.last.receive(BOB_OFFER);
    await settle();
    made[1]?.setIceState("connected");
    expect(room.snapshot.sfu).toBe("connected");
    farm.last.receive(talking("m2", true));
    expect(hook.__salon?.talking()).toEqual(["bob"]);
    farm.last.receive({ type: "room_media", room: "r1", sfu: true });
    expect(room.snapshot.sfu).toBe("restoring");
    expect(hook.__salon?.sfuState()).toBe("restoring");
  });

  it("says a publish refused by the SFU is being retried, as a state and not as a problem", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { farm, room } = await inRoom(true);
    farm.last.receive({ type: "error", code: "sfu_unavailable", message: "busy", ref: "sfu-publish" });
    expect(room.snapshot.sfu).toBe("retrying");
    expect(room.snapshot.problem).toBeNull();
  });

  it("expects the SFU's offer of the others' media once one of them sends some", async () => {
    const { farm, room, made } = await inRoom(true);
    await settle();
    farm.last.receive(ANSWER);
    await settle();
    made[0]?.setIceState("connected");
    expect(room.snapshot.sfu).toBe("connected"); // bob sends nothing: nothing to offer
    farm.last.receive(BOB_MIC_ON);
    expect(room.snapshot.sfu).toBe("connecting"); // his microphone is due
    farm.last.receive(BOB_OFFER);
    await settle();
    made[1]?.setIceState("connected");
    expect(room.snapshot.sfu).toBe("connected");
  });

  it("asks no new place while the socket is away, and at most one once it is back", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { farm, room, network } = await inRoom(true, () => vi.useFakeTimers());
    await vi.advanceTimersByTimeAsync(10);
    farm.last.receive(ANSWER); // the publisher never connects
    await vi.advanceTimersByTimeAsync(10);
    farm.last.drop(1006);
    await vi.advanceTimersByTimeAsync(75_000); // restarts were due after 10 s, 20 s and 40 s
    network.online(); // the network is back: a new socket at once
    resumeOn(farm, { room: "r1", missed: false });
    expect(sentOf(farm, "sfu_restart")).toEqual([{ type: "sfu_restart", ref: "sfu-restart" }]);
    expect(room.snapshot.sfu).toBe("reconnecting");
  });

  it("is off in a mesh room, where no new place on the SFU is ever asked for", async () => {
    const { farm, room } = await inRoom(false);
    expect(room.snapshot.sfu).toBe("off");
    vi.useFakeTimers();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sentOf(farm, "sfu_restart")).toEqual([]);
  });

  it("asks for a new place on the SFU when it does not connect, quietly, until room_media answers", async () => {
    vi.spyOn(console, "warn").mockImplementation(() => {});
    const { farm, room, made } = await inRoom(true, () => vi.useFakeTimers());
    await vi.advanceTimersByTimeAsync(10);
    farm.last.receive(ANSWER);
    await vi.advanceTimersByTimeAsync(10_100); // the publisher never connects
    expect(sentOf(farm, "sfu_restart")).toEqual([{ type: "sfu_restart", ref: "sfu-restart" }]);
    expect(room.snapshot.sfu).toBe("reconnecting");
    const busy = { type: "error", code: "rate_limited", message: "too many", ref: "sfu-restart" };
    farm.last.receive(busy);
    expect(room.snapshot.problem).toBeNull();
    await vi.advanceTimersByTimeAsync(10_000);
    expect(sentOf(farm, "sfu_restart")).toHaveLength(2);
    farm.last.receive({ type: "room_media", room: "r1", sfu: true }); // the new place
    await vi.advanceTimersByTimeAsync(10);
    expect(made).toHaveLength(2);
    expect(made[0]?.closed).toBe(true);
    expect(sentOf(farm, "sfu_publish")).toHaveLength(2);
    expect(room.snapshot.sfu).toBe("reconnecting");
    made[1]?.setIceState("connected");
    farm.last.receive(BOB_OFFER);
    await vi.advanceTimersByTimeAsync(10);
    made[2]?.setIceState("connected");
    expect(room.snapshot.sfu).toBe("connected");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(sentOf(farm, "sfu_restart")).toHaveLength(2);
    expect(room.snapshot.problem).toBeNull();
  });
});
