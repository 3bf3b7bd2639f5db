import { describe, expect, it } from "vitest";
import { FakeSocket, LIMITS } from "../test/fakes";
import { checkConnection } from "./check";

describe("checkConnection", () => {
  it("gets ICE servers over a greeted connection, closes it, and probes them", async () => {
    const socket = new FakeSocket();
    const configs: RTCConfiguration[] = [];
    const outcome = checkConnection({
      url: "wss://x/ws",
      socketFactory: () => socket,
      gatherMs: 10,
      factory: (config) => {
        configs.push(config);
        throw new Error("no WebRTC here");
      },
    });
    socket.open();
    expect(socket.sent[0]).toMatchObject({
      type: "hello",
      name: expect.stringMatching(/^connection check /),
    });
    socket.receive({
      type: "welcome",
      version: 1,
      id: "m1",
      name: "connection check x",
      ice_servers: [
        { urls: ["stun:s:3478"], username: null, credential: null },
        { urls: ["turn:s:3478"], username: "9:m1", credential: "c" },
      ],
      limits: LIMITS,
      resume_token: "t",
    });
    const done = await outcome;
    expect(socket.closedWith).toBe(1000);
    expect(configs[0]?.iceServers).toEqual([
      { urls: ["stun:s:3478"] },
      { urls: ["turn:s:3478"], username: "9:m1", credential: "c" },
    ]);
    expect(done).toMatchObject({ step: "done", result: { turnConfigured: true, relay: false } });
  });

  it("reports the server unavailable when the handshake fails", async () => {
    const socket = new FakeSocket();
    const outcome = checkConnection({ url: "wss://x/ws", socketFactory: () => socket });
    socket.drop(1006);
    expect(await outcome).toEqual({ step: "unavailable" });
  });
});
