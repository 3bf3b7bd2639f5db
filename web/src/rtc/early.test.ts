import { describe, expect, it } from "vitest";
import { EARLY_SENDERS, EARLY_SIGNALS_PER_MEMBER, EARLY_SIGNAL_MAX_AGE_MS, EarlySignals } from "./early";

const candidate = (n: number) => ({ candidate: { candidate: `candidate:${n} 1 udp 1 10.0.0.1 9 typ host` } });

describe("EarlySignals", () => {
  it("keeps signals per member in order, hands them over once, and never keeps a reset", () => {
    const early = new EarlySignals(() => 0);
    early.keep("a", candidate(1));
    early.keep("a", { reset: { reason: "ice_failed" } });
    early.keep("a", candidate(2));
    expect(early.take("a")).toEqual([candidate(1), candidate(2)]);
    expect(early.take("a")).toEqual([]);
  });

  it("keeps at most EARLY_SIGNALS_PER_MEMBER from one member and EARLY_SENDERS members", () => {
    const early = new EarlySignals(() => 0);
    for (let i = 0; i < EARLY_SIGNALS_PER_MEMBER + 5; i++) early.keep("a", candidate(i));
    expect(early.take("a")).toHaveLength(EARLY_SIGNALS_PER_MEMBER);
    for (let i = 0; i < EARLY_SENDERS + 3; i++) early.keep(`m${i}`, candidate(i));
    expect(early.take(`m${EARLY_SENDERS - 1}`)).toHaveLength(1);
    expect(early.take(`m${EARLY_SENDERS}`)).toEqual([]);
  });

  it("drops what is older than EARLY_SIGNAL_MAX_AGE_MS, and what is forgotten", () => {
    let now = 0;
    const early = new EarlySignals(() => now);
    early.keep("a", candidate(1));
    now = EARLY_SIGNAL_MAX_AGE_MS;
    early.keep("a", candidate(2));
    now += 1;
    expect(early.take("a")).toEqual([candidate(2)]);
    early.keep("b", candidate(3));
    early.forget("b");
    expect(early.take("b")).toEqual([]);
  });
});
