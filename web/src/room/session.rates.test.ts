import { afterEach, describe, expect, it, vi } from "vitest";
import { LocalMedia } from "../rtc/media";
import { SignalingClient } from "../signaling/client";
import { FakePeerConnection, FakeSocket, LIMITS } from "../test/fakes";
import { MAX_SHOWN_REACTIONS, REACTION_SHOW_MS } from "./reactions";
import { CHAT_RETRY_MS, RoomSession } from "./session";

async function joinedRoom() {
  const socket = new FakeSocket();
  const client = new SignalingClient("wss://x/ws", () => socket);
  const ready = client.connect("me");
  socket.open();
  socket.receive({
    type: "welcome",
    version: 1,
    id: "self",
    name: "me",
    ice_servers: [],
    limits: LIMITS,
    resume_token: "t",
  });
  await ready;
  const factory = () => new FakePeerConnection("pc") as unknown as RTCPeerConnection;
  const room = new RoomSession(client, new LocalMedia(undefined), factory);
  const early = room.react("clap"); // not in a room yet
  room.join("r1");
  socket.receive({
    type: "joined",
    room: "r1",
    private: false,
    members: [{ id: "m2", name: "bob", polite: true, media: { mic: false, camera: false, screen: false } }],
    history: [],
    last_seq: 0,
  });
  socket.sent.length = 0;
  return { socket, room, early };
}

describe("RoomSession reactions and rate refusals", () => {
  afterEach(() => vi.useRealTimers());

  it("sends a reaction only from inside the room", async () => {
    const { socket, room, early } = await joinedRoom();
    expect(early).toBe(false);
    expect(room.react("thumbs_up")).toBe(true);
    expect(room.react("clap")).toBe(true);
    expect(socket.sent).toEqual([
      { type: "reaction", reaction: "thumbs_up", ref: "reaction-1" },
      { type: "reaction", reaction: "clap", ref: "reaction-2" },
    ]);
  });

  it("says nothing of a reaction refused over the rate, but reports other refusals", async () => {
    const { socket, room } = await joinedRoom();
    room.react("party");
    socket.receive({ type: "error", code: "rate_limited", message: "too many reactions", ref: "reaction-1" });
    expect(room.snapshot.problem).toBeNull();
    socket.receive({ type: "error", code: "rate_limited", message: "too many messages", ref: null });
    expect(room.snapshot.problem?.code).toBe("rate_limited");
  });

  it("shows each reaction the server sends, its own too, for a few seconds", async () => {
    const { socket, room } = await joinedRoom();
    vi.useFakeTimers();
    socket.receive({ type: "reaction", from: "m2", reaction: "heart" });
    vi.advanceTimersByTime(1_000);
    socket.receive({ type: "reaction", from: "self", reaction: "wave" });
    const shown = room.snapshot.reactions;
    expect(shown.map((r) => [r.from, r.reaction])).toEqual([
      ["m2", "heart"],
      ["self", "wave"],
    ]);
    expect(new Set(shown.map((r) => r.key)).size).toBe(2);
    vi.advanceTimersByTime(REACTION_SHOW_MS - 1_000);
    expect(room.snapshot.reactions.map((r) => r.reaction)).toEqual(["wave"]);
    vi.advanceTimersByTime(1_000);
    expect(room.snapshot.reactions).toEqual([]);
  });

  it("keeps at most MAX_SHOWN_REACTIONS on screen", async () => {
    const { socket, room } = await joinedRoom();
    vi.useFakeTimers();
    for (let i = 0; i < MAX_SHOWN_REACTIONS + 10; i++)
      socket.receive({ type: "reaction", from: "m2", reaction: "clap" });
    expect(room.snapshot.reactions).toHaveLength(MAX_SHOWN_REACTIONS);
    room.dispose();
    vi.advanceTimersByTime(REACTION_SHOW_MS * 2);
    expect(room.snapshot.reactions).toHaveLength(MAX_SHOWN_REACTIONS); // disposed: no timer left
  });

  it.each(["rate_limited", "store_unavailable"])(
    "keeps a chat refused with %s as unsent and sends it again, once acknowledged",
    async (code) => {
      const { socket, room } = await joinedRoom();
      vi.useFakeTimers();
      room.sendChat("hello");
      const [sent] = socket.sent as { id: string }[];
      const id = sent?.id ?? "";
      socket.receive({ type: "error", code, message: "not now", ref: id });
      expect(room.snapshot.problem).toBeNull();
      expect(room.snapshot.unsent.map((u) => u.text)).toEqual(["hello"]);
      socket.sent.length = 0;
      vi.advanceTimersByTime(CHAT_RETRY_MS - 1);
      expect(socket.sent).toEqual([]);
      vi.advanceTimersByTime(1);
      expect(socket.sent).toEqual([{ type: "chat", text: "hello", id, ref: id }]);
      socket.receive({
        type: "chat",
        room: "r1",
        id: "x",
        seq: 1,
        ts: 1,
        from: "self",
        name: "me",
        text: "hello",
        client_id: id,
      });
      expect(room.snapshot.unsent).toEqual([]);
      expect(room.snapshot.chat.map((e) => e.text)).toEqual(["hello"]);
    },
  );

  it("still drops a chat refused for good", async () => {
    const { socket, room } = await joinedRoom();
    room.sendChat("x".repeat(10));
    const id = (socket.sent[0] as { id: string }).id;
    socket.receive({ type: "error", code: "invalid_text", message: "too long", ref: id });
    expect(room.snapshot.unsent).toEqual([]);
    expect(room.snapshot.problem?.code).toBe("invalid_text");
  });
});
