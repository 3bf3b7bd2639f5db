import { describe, expect, it } from "vitest";
import type { ProbeResult } from "../rtc/probe";
import { connectionSummary, probeLines } from "./connectivity";

const NONE: ProbeResult = {
  local: false,
  direct: false,
  relay: false,
  stunConfigured: true,
  turnConfigured: true,
  relayProblem: null,
};
const done = (r: Partial<ProbeResult>) => connectionSummary({ step: "done", result: { ...NONE, ...r } });
const JARGON = /STUN|TURN|relay|NAT|ICE|candidate/i;

describe("connectionSummary", () => {
  it("is ready with a relay, and with a direct path (but says what may fail)", () => {
    expect(done({ local: true, direct: true, relay: true })).toEqual({
      readiness: "ready",
      text: "Your connection is ready.",
    });
    const direct = done({ local: true, direct: true, relayProblem: "refused" });
    expect(direct.readiness).toBe("ready");
    expect(direct.text).toMatch(/^Your connection is ready\. .*may not connect/);
  });

  it("warns when only the local network or nothing was found", () => {
    expect(done({ local: true })).toMatchObject({ readiness: "poor" });
    expect(done({ local: true }).text).toMatch(/^Calls may not connect from this network/);
    expect(done({})).toMatchObject({ readiness: "poor" });
  });

  it("does not blame the network when the server offers no way through", () => {
    const bare = done({ local: true, stunConfigured: false, turnConfigured: false });
    expect(bare.readiness).toBe("limited");
    expect(bare.text).toBe(
      "Calls should work with people on your own network, but may not connect with people elsewhere.",
    );
  });

  it("says checking, and unknown when the server could not be asked", () => {
    expect(connectionSummary({ step: "checking" }).readiness).toBe("checking");
    expect(connectionSummary({ step: "unavailable" }).readiness).toBe("unknown");
  });

  it("never uses the words of the trade", () => {
    const cases: Partial<ProbeResult>[] = [
      { relay: true, direct: true, local: true },
      { direct: true, local: true },
      { local: true },
      { local: true, stunConfigured: false, turnConfigured: false },
      {},
    ];
    for (const c of cases) expect(done(c).text).not.toMatch(JARGON);
    expect(connectionSummary({ step: "checking" }).text).not.toMatch(JARGON);
    expect(connectionSummary({ step: "unavailable" }).text).not.toMatch(JARGON);
  });
});

describe("probeLines", () => {
  it("keeps one line per path, for the details", () => {
    const lines = probeLines({ ...NONE, local: true, relay: true });
    expect(lines.map((l) => [l.key, l.verdict])).toEqual([
      ["local", "ok"],
      ["direct", "missing"],
      ["relay", "ok"],
    ]);
  });
});
