import { describe, expect, it } from "vitest";
import {
  REMOTE_TUNING,
  RemoteSpeakers,
  sameSpeakers,
  SpeakerTracker,
  type Hearing,
  type Listened,
  type SpeakerState,
} from "./speaker";

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

describe("RemoteSpeakers", () => {
  const ANN_BOB: Listened[] = [
    { id: "ann", mic: true },
    { id: "bob", mic: true },
  ];
  /** Samples every STEP ms for `ms`; returns the last state. */
  const sample = (speakers: RemoteSpeakers, hearing: Hearing, ms: number, clock: { now: number }) => {
    const end = clock.now + ms;
    for (;;) {
      clock.now += STEP;
      const state = speakers.update(ANN_BOB, hearing, clock.now);
      if (clock.now >= end) return state;
    }
  };

  it("in a mesh room, follows the levels as SpeakerTracker does", () => {
    const speakers = new RemoteSpeakers();
    const tracker = new SpeakerTracker(REMOTE_TUNING);
    const levels: Record<string, number> = { ann: LOUD, bob: QUIET };
    const hearing = { level: (id: string) => levels[id] ?? 0, talking: null };
    for (let now = STEP; now <= 3_000; now += STEP) {
      if (now === 1_000) levels.ann = MID;
      if (now === 2_000) levels.ann = QUIET;
      const expected = tracker.update(new Map(Object.entries(levels)), now);
      expect(speakers.update(ANN_BOB, hearing, now)).toEqual(expected);
    }
    expect(speakers.update(ANN_BOB, hearing, 3_000 + STEP)).toEqual({ speaking: new Set(), active: "ann" });
  });

  it("on the SFU, speaking is exactly what the SFU says, whatever the levels", () => {
    const speakers = new RemoteSpeakers();
    const clock = { now: 0 };
    const talking = new Set(["bob"]);
    const hearing = { level: () => LOUD, talking };
    let state = sample(speakers, hearing, STEP, clock);
    expect(state).toEqual({ speaking: new Set(["bob"]), active: "bob" }); // the SFU waited already
    talking.add("ann");
    state = sample(speakers, hearing, 5_000, clock);
    expect(state).toEqual({ speaking: new Set(["ann", "bob"]), active: "bob" }); // bob goes on
    talking.delete("bob");
    state = sample(speakers, hearing, STEP, clock);
    expect(state).toEqual({ speaking: new Set(["ann"]), active: "ann" }); // no hold after it
    talking.delete("ann");
    expect(sample(speakers, hearing, STEP, clock)).toEqual({ speaking: new Set(), active: "ann" });
  });

  it("on the SFU, a muted member does not speak, and a room that moves starts over", () => {
    const speakers = new RemoteSpeakers();
    const clock = { now: 0 };
    const loud = { level: () => LOUD, talking: null };
    expect(sample(speakers, loud, 1_000, clock).active).not.toBeNull();
    const muted = (id: string) => ANN_BOB.map((m) => ({ ...m, mic: m.id !== id }));
    const state = speakers.update(muted("ann"), { level: () => LOUD, talking: new Set(["ann"]) }, clock.now);
    expect(state).toEqual({ speaking: new Set(), active: null });
  });
});
