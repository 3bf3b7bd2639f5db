import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  SocketFarm,
  connectedClient,
  noJitter,
  resumeOn,
  resumedWelcome,
  welcome,
} from "../test/signalingFakes";
import { GIVE_UP_AFTER_MS, SignalingClient } from "./client";
import { RETRY_EVERY_MS, drainDelayMs, retryDelayMs } from "./retry";

beforeEach(() => {
  vi.useFakeTimers();
});

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Advance to just before `ms`, check no new socket, then to `ms` and check one. */
function expectAttemptAfter(farm: SocketFarm, ms: number): void {
  const before = farm.sockets.length;
  vi.advanceTimersByTime(ms - 1);
  expect(farm.sockets).toHaveLength(before);
  vi.advanceTimersByTime(1);
  expect(farm.sockets).toHaveLength(before + 1);
}

describe("retry schedule", () => {
  it("is immediate, then 0.3, 1.2, 2.7, 4.8 s, then every 7 s, each with bounded jitter", () => {
    const at = (random: number) => [0, 1, 2, 3, 4, 5, 9].map((n) => retryDelayMs(n, () => random));
    expect(at(0.5)).toEqual([0, 300, 1200, 2700, 4800, 7000, 7000]);
    expect(at(0)).toEqual([0, 240, 960, 2160, 3840, 5000, 5000]);
    expect(at(0.999999)).toEqual([0, 360, 1440, 3240, 5760, 9000, 9000]);
    expect(drainDelayMs(3000, () => 0)).toBe(3000);
    expect(drainDelayMs(3000, () => 0.999999)).toBe(5000);
  });
});

describe("SignalingClient reconnect", () => {
  it("retries at once, then on the schedule, each attempt presenting the latest resume token", async () => {
    const { farm, client } = await connectedClient();
    const reconnecting = vi.fn();
    client.onReconnecting(reconnecting);
    farm.last.receive({ type: "resume_token", token: "token-newer" });
    farm.last.drop(1006);
    expect(client.state).toBe("reconnecting");
    expect(reconnecting).toHaveBeenCalledWith({ code: 1006, reason: "" });
    expect(farm.sockets).toHaveLength(2); // the first attempt is immediate
    farm.last.open();
    expect(farm.last.sent).toEqual([
      { type: "hello", versions: [1, 2, 3], name: "me", resume: "token-newer" },
    ]);
    farm.last.drop(1006);
    for (const delay of [300, 1200, 2700, 4800, RETRY_EVERY_MS, RETRY_EVERY_MS]) {
      expectAttemptAfter(farm, delay);
      farm.last.drop(1006); // refused: the server is still away
    }
  });

  it("tries at once when the browser says it is online again, and starts the schedule over", async () => {
    const { farm, network, client } = await connectedClient();
    farm.last.drop(1006);
    farm.last.drop(1006);
    vi.advanceTimersByTime(300);
    farm.last.drop(1006);
    expect(farm.sockets).toHaveLength(3); // waiting 1.2 s for the next
    network.online();
    expect(farm.sockets).toHaveLength(4);
    farm.last.drop(1006);
    expectAttemptAfter(farm, 300);
    resumeOn(farm, { room: null, missed: false });
    expect(client.state).toBe("open");
    expect(network.listeners.size).toBe(0); // no longer listening once resumed
  });

  it("abandons an attempt that gets no welcome in time, keeping the place (not 1000)", async () => {
    const { farm } = await connectedClient();
    farm.last.drop(1006);
    const stuck = farm.last; // never opens: packets dropped, not refused
    vi.advanceTimersByTime(9_999);
    expect(stuck.closedWith).toBeNull();
    vi.advanceTimersByTime(1);
    expect(stuck.closedWith).toBe(4000);
    expectAttemptAfter(farm, 300);
  });

  it("queues what is sent while reconnecting and sends it, in order, once resumed", async () => {
    const { farm, client } = await connectedClient();
    const resumed = vi.fn();
    client.onResumed(resumed);
    farm.last.drop(1006);
    expect(client.send({ type: "media", mic: true, camera: false, screen: false })).toBe(true);
    expect(client.send({ type: "chat", text: "hi", id: "AAAAAAAAAAAAAAAA" })).toBe(true);
    const socket = farm.last;
    socket.open();
    expect(socket.sent).toHaveLength(1); // only the hello: the place is not ours yet
    socket.receive(resumedWelcome({ room: "r1", missed: false }));
    expect(socket.sent.slice(1)).toEqual([
      { type: "media", mic: true, camera: false, screen: false },
      { type: "chat", text: "hi", id: "AAAAAAAAAAAAAAAA" },
    ]);
    expect(resumed).toHaveBeenCalledWith(expect.objectContaining({ id: "self", resumed: expect.anything() }));
    expect(client.state).toBe("open");
    expect(client.resumeToken).toBe("token-2");
  });

  it("bounds the queue, dropping the oldest and saying so", async () => {
    const warn = vi.spyOn(console, "warn").mockImplementation(() => {});
    const farm = new SocketFarm();
    const client = new SignalingClient("wss://x/ws", farm.factory, {
      random: noJitter,
      network: null,
      queueLimit: 3,
    });
    const ready = client.connect("me");
    farm.last.open();
    farm.last.receive(welcome());
    await ready;
    farm.last.drop(1006);
    for (const since of [1, 2, 3, 4, 5]) expect(client.send({ type: "history", since })).toBe(true);
    expect(warn).toHaveBeenCalled();
    const socket = resumeOn(farm, { room: "r1", missed: false });
    expect(socket.sent.slice(1)).toEqual([3, 4, 5].map((since) => ({ type: "history", since })));
  });

  it("after resume_failed says a plain hello on the same socket and reports a new identity", async () => {
    const { farm, client } = await connectedClient();
    const renewed = vi.fn();
    const resumed = vi.fn();
    client.onRenewed(renewed);
    client.onResumed(resumed);
    farm.last.drop(1006);
    client.send({ type: "leave" });
    const socket = farm.last;
    socket.open();
    socket.receive({ type: "error", code: "resume_failed", message: "the place is gone", ref: null });
    expect(socket.sent).toEqual([
      { type: "hello", versions: [1, 2, 3], name: "me", resume: "token-1" },
      { type: "hello", versions: [1, 2, 3], name: "me" },
    ]);
    expect(socket.closedWith).toBeNull();
    socket.receive(welcome({ id: "other", resume_token: "token-9" }));
    expect(renewed).toHaveBeenCalledWith(expect.objectContaining({ id: "other" }));
    expect(resumed).not.toHaveBeenCalled();
    expect(socket.sent).toHaveLength(2); // the queued leave belonged to the old place
    expect(client.welcome?.id).toBe("other");
    expect(client.resumeToken).toBe("token-9");
  });

  it("stays reachable in the hellos of a resume and of a new place", async () => {
    const farm = new SocketFarm();
    const client = new SignalingClient("wss://x/ws", farm.factory, { random: noJitter, network: null });
    const ready = client.connect("me", { reachable: true });
    farm.last.open();
    farm.last.receive(welcome());
    await ready;
    farm.last.drop(1006);
    const socket = farm.last;
    socket.open();
    socket.receive({ type: "error", code: "resume_failed", message: "the place is gone", ref: null });
    expect(socket.sent).toEqual([
      { type: "hello", versions: [1, 2, 3], name: "me", reachable: true, resume: "token-1" },
      { type: "hello", versions: [1, 2, 3], name: "me", reachable: true },
    ]);
    client.close();
  });

  it("does not reconnect after 4003: closed for rate abuse, it would only abuse again", async () => {
    const { farm, network, client } = await connectedClient();
    const closed = vi.fn();
    client.onClose(closed);
    farm.last.drop(4003);
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ code: 4003, cause: "refused" }));
    expect(client.state).toBe("closed");
    network.online();
    vi.advanceTimersByTime(60_000);
    expect(farm.sockets).toHaveLength(1);
  });

  it("does not reconnect after 4005: another tab or window took the place", async () => {
    const { farm, network, client } = await connectedClient();
    const closed = vi.fn();
    client.onClose(closed);
    farm.last.drop(4005);
    expect(closed).toHaveBeenCalledWith(
      expect.objectContaining({ code: 4005, cause: "replaced", expected: false }),
    );
    expect(client.state).toBe("closed");
    network.online();
    vi.advanceTimersByTime(60_000);
    expect(farm.sockets).toHaveLength(1);
  });

  it("does not reconnect after 4006: the account session ended, and a new socket would be a guest's", async () => {
    const { farm, network, client } = await connectedClient();
    const closed = vi.fn();
    client.onClose(closed);
    client.send({ type: "chat", id: "c1", text: "hi" });
    farm.last.drop(4006);
    expect(closed).toHaveBeenCalledWith(
      expect.objectContaining({ code: 4006, cause: "signed_out", expected: false }),
    );
    expect(client.state).toBe("closed");
    expect(client.send({ type: "chat", id: "c2", text: "queued?" })).toBe(false);
    network.online();
    vi.advanceTimersByTime(GIVE_UP_AFTER_MS);
    expect(farm.sockets).toHaveLength(1);
  });

  it("after server_draining waits retry_after_ms plus jitter before the first attempt", async () => {
    const { farm, client } = await connectedClient();
    farm.last.receive({ type: "server_draining", retry_after_ms: 3000 });
    farm.last.drop(1012);
    expect(client.state).toBe("reconnecting");
    expectAttemptAfter(farm, 3000 + 1000); // noJitter: half of the 2 s spread
    farm.last.drop(1006); // the new process is not listening yet: back to the schedule
    expectAttemptAfter(farm, 300);
  });

  it("gives up after five minutes of failed attempts, and says the connection is lost", async () => {
    const { farm, network, client } = await connectedClient();
    const closed = vi.fn();
    client.onClose(closed);
    const lostAt = Date.now();
    farm.last.drop(1006);
    while (client.state === "reconnecting" && Date.now() - lostAt < 10 * 60_000) {
      farm.last.drop(1006);
      vi.advanceTimersByTime(1000);
    }
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ cause: "lost", expected: false }));
    const gaveUpAfter = Date.now() - lostAt;
    expect(gaveUpAfter).toBeGreaterThanOrEqual(5 * 60_000);
    expect(gaveUpAfter).toBeLessThanOrEqual(5 * 60_000 + RETRY_EVERY_MS + 1000);
    const attempts = farm.sockets.length;
    expect(attempts).toBeGreaterThan(40); // ≈ 5 min / 7 s
    expect(network.listeners.size).toBe(0);
    vi.advanceTimersByTime(60_000);
    expect(farm.sockets).toHaveLength(attempts);
  });

  it("keeps trying through transient refusals, but stops on one a retry cannot change", async () => {
    const { farm, client } = await connectedClient();
    farm.last.drop(1006);
    farm.last.open();
    farm.last.receive({ type: "error", code: "server_full", message: "busy", ref: null });
    expect(client.state).toBe("reconnecting");
    expectAttemptAfter(farm, 300);
    farm.last.open();
    farm.last.receive({ type: "error", code: "invalid_name", message: "no", ref: null });
    expect(client.state).toBe("closed");
  });

  it("stops reconnecting when closed on purpose", async () => {
    const { farm, client } = await connectedClient();
    const closed = vi.fn();
    client.onClose(closed);
    farm.last.drop(1006);
    farm.last.drop(1006);
    client.close();
    expect(closed).toHaveBeenCalledWith(expect.objectContaining({ expected: true, cause: "left" }));
    vi.advanceTimersByTime(60_000);
    expect(farm.sockets).toHaveLength(2);
  });
});
