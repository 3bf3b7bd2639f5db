import { describe, expect, it } from "vitest";
import { REMOTE_TUNING, sameSpeakers, SpeakerTracker, type SpeakerState } from "./speaker";

const { on, off, holdMs, settleMs, switchMs } = REMOTE_TUNING;
const LOUD = 0.3;
const MID = (on + off) / 2; // between the two thresholds
const QUIET = 0;
const STEP = 50;

/** Drives a tracker with levels sampled every STEP ms. */
class Room {
  readonly tracker = new SpeakerTracker();
  now = 0;
  state: SpeakerState = { speaking: new Set(), active: null };

  /** Feed the same levels for `ms` (at least one sample). */
  hold(levels: Record<string, number>, ms = STEP): SpeakerState {
    const end = this.now + ms;
    do {
      this.now += STEP;
      this.state = this.tracker.update(new Map(Object.entries(levels)), this.now);
    } while (this.now < end);
    return this.state;
  }

  speaking(id: string): boolean {
    return this.state.speaking.has(id);
  }
}

describe("speaking, with hysteresis", () => {
  it("starts above the upper threshold only", () => {
    const room = new Room();
    room.hold({ ann: MID }, 2_000);
    expect(room.speaking("ann")).toBe(false);
    room.hold({ ann: on });
    expect(room.speaking("ann")).toBe(true);
  });

  it("continues while the level stays above the lower threshold", () => {
    const room = new Room();
    room.hold({ ann: LOUD });
    room.hold({ ann: MID }, 5_000);
    expect(room.speaking("ann")).toBe(true);
  });

  it("survives pauses shorter than the hold, and ends after a longer silence", () => {
    const room = new Room();
    room.hold({ ann: LOUD });
    room.hold({ ann: QUIET }, holdMs - 2 * STEP);
    expect(room.speaking("ann")).toBe(true);
    room.hold({ ann: LOUD });
    room.hold({ ann: QUIET }, holdMs - 2 * STEP);
    expect(room.speaking("ann")).toBe(true);
    room.hold({ ann: QUIET }, 3 * STEP);
    expect(room.speaking("ann")).toBe(false);
  });

  it("stays steady for a beeping microphone (a short beep twice a second)", () => {
    const room = new Room();
    for (let beep = 0; beep < 10; beep++) {
      room.hold({ ann: LOUD, bob: QUIET });
      room.hold({ ann: QUIET, bob: QUIET }, 450);
      expect(room.speaking("ann")).toBe(true);
      expect(room.speaking("bob")).toBe(false);
    }
  });
});

describe("the active speaker", () => {
  it("is no one before anyone spoke", () => {
    expect(new Room().hold({ ann: QUIET, bob: QUIET }, 1_000).active).toBeNull();
  });

  it("takes over once they have spoken for a moment, not for a cough", () => {
    const room = new Room();
    room.hold({ ann: LOUD, bob: QUIET }, settleMs + STEP);
    expect(room.state.active).toBe("ann");
    room.hold({ ann: QUIET, bob: QUIET }, holdMs + STEP);
    room.hold({ ann: QUIET, bob: LOUD }, settleMs - 2 * STEP); // a cough
    expect(room.state.active).toBe("ann");
    room.hold({ ann: QUIET, bob: QUIET }, holdMs + STEP);
    expect(room.state.active).toBe("ann");
  });

  it("follows whoever speaks after the active speaker went quiet", () => {
    const room = new Room();
    room.hold({ ann: LOUD, bob: QUIET }, 1_000);
    room.hold({ ann: QUIET, bob: QUIET }, holdMs + STEP);
    expect(room.speaking("ann")).toBe(false);
    expect(room.state.active).toBe("ann"); // stays while no one speaks
    room.hold({ ann: QUIET, bob: LOUD }, settleMs + STEP);
    expect(room.state.active).toBe("bob");
  });

  it("is not taken over by someone quieter who talks at the same time", () => {
    const room = new Room();
    room.hold({ ann: LOUD, bob: QUIET }, 1_000);
    room.hold({ ann: LOUD, bob: 0.1 }, 5_000);
    expect(room.state.active).toBe("ann");
  });

  it("is taken over by someone clearly louder only after a while", () => {
    const room = new Room();
    room.hold({ ann: 0.1, bob: QUIET }, 1_000);
    room.hold({ ann: 0.1, bob: LOUD }, switchMs);
    expect(room.state.active).toBe("ann");
    room.hold({ ann: 0.1, bob: LOUD }, settleMs + 4 * STEP);
    expect(room.state.active).toBe("bob");
  });

  it("is forgotten when they leave", () => {
    const room = new Room();
    room.hold({ ann: LOUD, bob: QUIET }, 1_000);
    room.hold({ bob: QUIET });
    expect(room.state.active).toBeNull();
    expect(room.speaking("ann")).toBe(false);
  });
});

describe("sameSpeakers", () => {
  it("compares the active speaker and the speaking set", () => {
    const a = { speaking: new Set(["ann"]), active: "ann" };
    expect(sameSpeakers(a, { speaking: new Set(["ann"]), active: "ann" })).toBe(true);
    expect(sameSpeakers(a, { speaking: new Set(["bob"]), active: "ann" })).toBe(false);
    expect(sameSpeakers(a, { speaking: new Set(["ann"]), active: null })).toBe(false);
  });
});
