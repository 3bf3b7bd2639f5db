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

afterEach(() => {
  vi.useRealTimers();
});

describe("SignalingClient handshake", () => {
  it("says hello with its versions and resolves with the welcome", async () => {
    const { socket, client } = setup();
    const welcome = client.connect("alice");
    socket.open();
    expect(socket.sent).toEqual([{ type: "hello", versions: [1], name: "alice" }]);
    socket.receive(WELCOME);
    await expect(welcome).resolves.toMatchObject({ id: "m1", name: "alice" });
    expect(client.state).toBe("open");
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

  it("reports a dropped connection as lost, and its own close as expected", async () => {
    const first = await connected();
    const lost = vi.fn();
    first.client.onClose(lost);
    first.socket.drop(1006);
    expect(lost).toHaveBeenCalledWith({ code: 1006, reason: "", expected: false });

    const second = await connected();
    const closed = vi.fn();
    second.client.onClose(closed);
    second.client.close();
    second.socket.drop(1000);
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ expected: true }));
  });

  it("gives up on a server that stays silent past the dead-peer timeout", async () => {
    vi.useFakeTimers();
    const { socket, client } = await connected();
    const lost = vi.fn();
    client.onClose(lost);
    vi.advanceTimersByTime(45_000);
    expect(lost).not.toHaveBeenCalled();
    vi.advanceTimersByTime(6_000);
    expect(lost).toHaveBeenCalledWith(expect.objectContaining({ expected: false }));
    expect(socket.closedWith).toBe(4004);
    expect(client.send({ type: "leave" })).toBe(false);
  });

  it("does not send before the connection is open", () => {
    const { client } = setup();
    expect(client.send({ type: "leave" })).toBe(false);
  });
});
