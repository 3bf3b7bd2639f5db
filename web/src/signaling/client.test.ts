import { afterEach, describe, expect, it, vi } from "vitest";
import { FakeSocket, LIMITS } from "../test/fakes";
import { SignalingClient, SignalingError, signalingUrl } from "./client";

const WELCOME = {
  type: "welcome",
  version: 1,
  id: "m1",
  name: "alice",
  ice_servers: [],
  limits: LIMITS,
  resume_token: "t",
};

function setup() {
  const socket = new FakeSocket();
  const client = new SignalingClient("wss://x/ws", () => socket);
  return { socket, client };
}

async function connected() {
  const { socket, client } = setup();
  const welcome = client.connect("alice");
  socket.open();
  socket.receive(WELCOME);
  await welcome;
  return { socket, client };
}

/** A greeted client whose every socket (the first, then each reconnect's) is kept in order. */
async function greetedOnNewSockets() {
  const sockets: FakeSocket[] = [];
  const client = new SignalingClient(
    "wss://x/ws",
    () => {
      sockets.push(new FakeSocket());
      return sockets.at(-1)!;
    },
    { network: null },
  );
  const ready = client.connect("alice");
  sockets[0]!.open();
  sockets[0]!.receive(WELCOME);
  await ready;
  return { client, sockets };
}

afterEach(() => {
  vi.useRealTimers();
});

describe("SignalingClient handshake", () => {
  it("says hello with its versions and resolves with the welcome", async () => {
    const { socket, client } = setup();
    const welcome = client.connect("alice");
    socket.open();
    expect(socket.sent).toEqual([{ type: "hello", versions: [1, 2, 3], name: "alice" }]);
    socket.receive(WELCOME);
    await expect(welcome).resolves.toMatchObject({ id: "m1", name: "alice" });
    expect(client.state).toBe("open");
  });

  it("says reachable in every hello when asked to (the call page), never otherwise", async () => {
    const { socket, client } = setup();
    const welcome = client.connect("alice", { reachable: true });
    socket.open();
    expect(socket.sent).toEqual([{ type: "hello", versions: [1, 2, 3], name: "alice", reachable: true }]);
    socket.receive(WELCOME);
    await welcome;
    const room = setup();
    void room.client.connect("bob");
    room.socket.open();
    expect(room.socket.sent).toEqual([{ type: "hello", versions: [1, 2, 3], name: "bob" }]);
  });

  it("rejects with the server's code when the hello is refused", async () => {
    const { socket, client } = setup();
    const welcome = client.connect("alice");
    socket.open();
    socket.receive({ type: "error", code: "name_taken", message: "taken" });
    await expect(welcome).rejects.toMatchObject({ code: "name_taken" });
    expect(socket.closedWith).toBe(1000);
  });

  it("rejects as unreachable when the socket closes before the welcome", async () => {
    const { socket, client } = setup();
    const welcome = client.connect("alice");
    socket.drop();
    const error = await welcome.catch((e: unknown) => e);
    expect(error).toBeInstanceOf(SignalingError);
    expect((error as SignalingError).code).toBe("unreachable");
  });

  it("builds wss URLs for https pages and ws for http", () => {
    expect(signalingUrl({ protocol: "https:", host: "h:1" })).toBe("wss://h:1/ws");
    expect(signalingUrl({ protocol: "http:", host: "h" })).toBe("ws://h/ws");
  });
});

describe("SignalingClient after the handshake", () => {
  it("delivers typed events by message type", async () => {
    const { socket, client } = await connected();
    const seen: string[] = [];
    client.on("member_left", (m) => seen.push(`left ${m.id}`));
    client.on("chat", (m) => seen.push(`chat ${m.text}`));
    socket.receive({ type: "member_left", room: "r", id: "m2" });
    socket.receive({ type: "chat", room: "r", id: "c", seq: 1, ts: 0, from: "m2", name: "b", text: "hi" });
    expect(seen).toEqual(["left m2", "chat hi"]);
  });

  it("ignores frames that are not JSON objects with a type", async () => {
    const { socket, client } = await connected();
    const handler = vi.fn();
    client.on("chat", handler);
    socket.onmessage?.({ data: "not json" });
    socket.onmessage?.({ data: "[1,2]" });
    expect(handler).not.toHaveBeenCalled();
  });

  it("answers the server's ping with a pong (keepalive)", async () => {
    const { socket } = await connected();
    socket.receive({ type: "ping" });
    expect(socket.sent.at(-1)).toEqual({ type: "pong" });
  });

  it("reports its own close as expected, with 1000 so the server ends the place", async () => {
    const { socket, client } = await connected();
    const closed = vi.fn();
    client.onClose(closed);
    client.close();
    expect(socket.closedWith).toBe(1000);
    expect(closed).toHaveBeenCalledWith({ code: 1000, reason: "bye", expected: true, cause: "left" });
    expect(client.state).toBe("closed");
    expect(client.send({ type: "leave" })).toBe(false);
  });

  it("reconnects, instead of closing, when the server stays silent past the dead-peer timeout", async () => {
    vi.useFakeTimers();
    const { client, sockets } = await greetedOnNewSockets();
    const lost = vi.fn();
    const reconnecting = vi.fn();
    client.onClose(lost);
    client.onReconnecting(reconnecting);
    vi.advanceTimersByTime(45_000);
    expect(reconnecting).not.toHaveBeenCalled();
    vi.advanceTimersByTime(6_000);
    expect(sockets[0]?.closedWith).toBe(4004);
    expect(reconnecting).toHaveBeenCalledWith({ code: 4004, reason: "server silent" });
    expect(lost).not.toHaveBeenCalled();
    expect(client.state).toBe("reconnecting");
    expect(sockets).toHaveLength(2);
  });

  it("a probe pings, and resumes on a new socket when nothing is heard within its timeout", async () => {
    vi.useFakeTimers();
    const { client, sockets } = await greetedOnNewSockets();
    const reconnecting = vi.fn();
    client.onReconnecting(reconnecting);

    // Answered: nothing happens.
    client.probe(4_000);
    expect(sockets[0]!.sent.at(-1)).toEqual({ type: "ping" });
    vi.advanceTimersByTime(1_000);
    sockets[0]!.receive({ type: "pong" });
    vi.advanceTimersByTime(10_000);
    expect(reconnecting).not.toHaveBeenCalled();

    // One probe at a time; unanswered: a new socket resumes with the token.
    client.probe(4_000);
    client.probe(4_000);
    expect(sockets[0]!.sent.filter((m) => (m as { type: string }).type === "ping")).toHaveLength(2);
    vi.advanceTimersByTime(3_999);
    expect(reconnecting).not.toHaveBeenCalled();
    vi.advanceTimersByTime(1);
    expect(reconnecting).toHaveBeenCalledWith({ code: 4004, reason: "no answer to a probe" });
    expect(client.state).toBe("reconnecting");
    expect(sockets).toHaveLength(2);
    sockets[1]!.open();
    expect(sockets[1]!.sent[0]).toMatchObject({ type: "hello", resume: "t" });
  });

  it("does not send before the connection is open", () => {
    const { client } = setup();
    expect(client.send({ type: "leave" })).toBe(false);
  });
});
