import { describe, expect, it } from "vitest";
import {
  nextSlowMs,
  settled,
  SFU_CONNECT_GRACE_MS,
  sfuNotice,
  sfuState,
  type SfuPath,
  type SfuState,
} from "./sfuState";

const leg = (state: RTCPeerConnectionState, since = 0) => ({ state, since });
const OFF: SfuPath = {
  publisher: null,
  subscriber: null,
  offerDue: null,
  retrying: false,
  restarted: false,
  reconnecting: false,
};
const path = (patch: Partial<SfuPath>): SfuPath => ({ ...OFF, publisher: leg("new"), ...patch });

describe("sfuState", () => {
  it("is off while the room is a mesh", () => {
    expect(sfuState(OFF, 10_000)).toBe("off");
    expect(nextSlowMs(OFF, 0)).toBeNull();
  });

  it("says nothing while connecting for less than the grace, and turns slow after it", () => {
    const starting = path({ publisher: leg("connecting", 1_000) });
    expect(SFU_CONNECT_GRACE_MS).toBe(3_000);
    expect(sfuState(starting, 3_999)).toBe("connecting");
    expect(nextSlowMs(starting, 3_000)).toBe(1_000);
    expect(sfuState(starting, 4_000)).toBe("slow");
    expect(nextSlowMs(starting, 4_000)).toBeNull();
    // The subscriber is made later than the publisher: its own grace.
    const receiving = path({ publisher: leg("connected"), subscriber: leg("new", 10_000) });
    expect(sfuState(receiving, 12_000)).toBe("connecting");
    expect(sfuState(receiving, 13_000)).toBe("slow");
  });

  it("is connected when every connection there is carries media, and an offer due is not in", () => {
    expect(sfuState(path({ publisher: leg("connected") }), 60_000)).toBe("connected");
    const both = path({ publisher: leg("connected"), subscriber: leg("connected") });
    expect(sfuState(both, 60_000)).toBe("connected");
    // Others send media, and the SFU has not offered it yet: connecting, then slow.
    const due = path({ publisher: leg("connected"), offerDue: 50_000 });
    expect(settled(due)).toBe(false);
    expect(sfuState(due, 52_999)).toBe("connecting");
    expect(nextSlowMs(due, 52_000)).toBe(1_000);
    expect(sfuState(due, 53_000)).toBe("slow");
    expect(nextSlowMs(due, 53_000)).toBeNull();
  });

  it("says a connection is interrupted or failed, whichever is worse", () => {
    const interrupted = path({ publisher: leg("connected"), subscriber: leg("disconnected") });
    expect(sfuState(interrupted, 0)).toBe("interrupted");
    const failed = path({ publisher: leg("failed"), subscriber: leg("disconnected") });
    expect(sfuState(failed, 0)).toBe("failed");
  });

  it("says a refused offer is being made again, before anything else", () => {
    expect(sfuState(path({ retrying: true }), 60_000)).toBe("retrying");
    expect(sfuState(path({ publisher: leg("connected"), retrying: true }), 0)).toBe("retrying");
    // The SFU does not answer: no restart, nor the SFU's own, is what the person should hear of.
    const everything = { reconnecting: true, restarted: true, subscriber: leg("failed") };
    expect(sfuState(path({ ...everything, retrying: true }), 60_000)).toBe("retrying");
  });

  it("says the SFU restarted until both connections carry media again", () => {
    const restarted = { restarted: true, offerDue: 0 };
    expect(sfuState(path({ ...restarted, publisher: leg("connected") }), 0)).toBe("restoring");
    const receiving = { ...restarted, offerDue: null, publisher: leg("connected") };
    expect(sfuState(path({ ...receiving, subscriber: leg("connecting") }), 0)).toBe("restoring");
    expect(sfuState(path({ ...receiving, subscriber: leg("failed") }), 0)).toBe("failed");
    const restored = path({ ...receiving, subscriber: leg("connected") });
    expect(settled(restored)).toBe(true);
    expect(sfuState(restored, 0)).toBe("connected");
    // Alone in the room, there is nothing to receive: the publisher is enough.
    expect(sfuState(path({ restarted: true, publisher: leg("connected") }), 0)).toBe("connected");
  });

  it("says it reconnects from asking for a new place until the connections carry media", () => {
    const asked = { reconnecting: true, publisher: leg("failed"), subscriber: leg("new", 0) };
    expect(sfuState(path(asked), 60_000)).toBe("reconnecting"); // not failed, nor slow
    expect(sfuState(path({ ...asked, restarted: true }), 0)).toBe("reconnecting");
    const answered = { reconnecting: true, restarted: true, publisher: leg("connected") };
    expect(sfuState(path({ ...answered, offerDue: 0 }), 60_000)).toBe("reconnecting");
    expect(sfuState(path(answered), 0)).toBe("connected");
  });
});

describe("sfuNotice", () => {
  it("has a sentence for every troubled state, and none otherwise", () => {
    const states: SfuState[] = ["off", "connecting", "connected"];
    expect(states.map(sfuNotice)).toEqual([null, null, null]);
    expect(sfuNotice("slow")).toBe("Connecting to the media server…");
    expect(sfuNotice("retrying")).toBe("The media server is not answering. Trying again…");
    expect(sfuNotice("restoring")).toBe("The media server restarted. Restoring media…");
    expect(sfuNotice("reconnecting")).toBe("Reconnecting to the media server…");
    expect(sfuNotice("interrupted")).toMatch(/interrupted/);
    expect(sfuNotice("failed")).toMatch(/leave and join again/);
  });
});
