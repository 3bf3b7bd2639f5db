import { describe, expect, it } from "vitest";
import { hasTurn, iceTransportPolicy, refreshDelayMs, toRtcIceServers, turnExpiryMs } from "./ice";

const MIN = 60_000;

describe("ICE servers from the server", () => {
  it("drops null username and credential members", () => {
    expect(
      toRtcIceServers([
        { urls: ["stun:s:3478"], username: null, credential: null },
        { urls: ["turn:t:3478"], username: "1700000000:m1", credential: "pw" },
      ]),
    ).toEqual([
      { urls: ["stun:s:3478"] },
      { urls: ["turn:t:3478"], username: "1700000000:m1", credential: "pw" },
    ]);
  });

  it("reads the earliest TURN expiry from the usernames", () => {
    expect(turnExpiryMs([{ urls: ["stun:s"], username: null, credential: null }])).toBeNull();
    expect(
      turnExpiryMs([
        { urls: ["turn:a"], username: "2000:m1", credential: "x" },
        { urls: ["turn:b"], username: "1500:m1", credential: "x" },
        { urls: ["turn:c"], username: "not-rest", credential: "x" },
      ]),
    ).toBe(1_500_000);
    expect(hasTurn([{ urls: ["stun:s"] }])).toBe(false);
    expect(hasTurn([{ urls: "turns:t:5349" }])).toBe(true);
  });

  it("refreshes at half the remaining life, within a minute of either end", () => {
    const now = 1_000_000_000;
    expect(refreshDelayMs(now + 6 * 3600_000, now)).toBe(3 * 3600_000);
    // 3 minutes left: half is 90 s, before expiry - 60 s (120 s).
    expect(refreshDelayMs(now + 180_000, now)).toBe(90_000);
    // 100 s left: half (50 s) is below the floor; the floor wins, never a loop.
    expect(refreshDelayMs(now + 100_000, now)).toBe(MIN);
    // Already expired by this clock (skew): still a minute, not zero.
    expect(refreshDelayMs(now - 5_000, now)).toBe(MIN);
  });

  it("forces the relay only with the diagnostic ?ice=relay setting", () => {
    expect(iceTransportPolicy("?ice=relay")).toBe("relay");
    expect(iceTransportPolicy("?x=1&ice=relay")).toBe("relay");
    expect(iceTransportPolicy("")).toBe("all");
    expect(iceTransportPolicy("?ice=all")).toBe("all");
  });
});
