import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { SfuWatchdog, WATCHDOG_POLICY } from "./sfuWatchdog";

/**
 * A watchdog whose asks are noted with the fake time they went at; `signaling.open` is
 * whether the signaling socket is open.
 */
function watchdog() {
  const asked: number[] = [];
  const changes = vi.fn();
  const trail: string[] = [];
  const signaling = { open: true };
  const dog = new SfuWatchdog({
    ask: () => asked.push(Date.now()),
    changed: changes,
    note: (step) => trail.push(step),
    signalingOpen: () => signaling.open,
  });
  return { dog, asked, changes, trail, signaling };
}

/** The time between consecutive asks. */
const gaps = (asked: number[]) => asked.slice(1).map((at, i) => at - asked[i]!);

/** The connections the server's answer makes: a new publisher, setting up. */
function answer(dog: SfuWatchdog): void {
  dog.begin();
  dog.watch("publisher", "new");
}

beforeEach(() => {
  vi.useFakeTimers();
  vi.setSystemTime(0);
});
afterEach(() => {
  vi.useRealTimers();
});

describe("SfuWatchdog", () => {
  it("asks once when a connection has not connected 10 s after it was made or last described", async () => {
    const { dog, asked, changes, trail } = watchdog();
    expect(WATCHDOG_POLICY).toEqual({
      connectMs: 10_000,
      disconnectedMs: 5_000,
      firstWaitMs: 10_000,
      maxWaitMs: 60_000,
      gatheringStallMs: 4_000,
    });
    dog.begin();
    dog.watch("publisher", "new");
    await vi.advanceTimersByTimeAsync(6_000);
    dog.watch("subscriber", "new"); // made by the SFU's offer
    dog.observe("publisher", "connected");
    await vi.advanceTimersByTimeAsync(2_000);
    dog.watch("subscriber", "new"); // its answer applied: 10 s from now
    await vi.advanceTimersByTimeAsync(9_999);
    expect(asked).toEqual([]);
    expect(dog.reconnecting).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toEqual([18_000]);
    expect(dog.reconnecting).toBe(true);
    expect(changes).toHaveBeenCalledOnce();
    expect(trail).toEqual(["restart asked (subscriber new after 10000 ms); the next after 10000 ms"]);
    dog.observe("publisher", "failed"); // already asked: not again before the wait is over
    expect(asked).toHaveLength(1);
  });

  it("asks 4 s after a local description when the connection gathered no candidate", async () => {
    const { dog, asked, trail } = watchdog();
    dog.begin();
    dog.expectCandidates("publisher"); // its offer, before any answer
    dog.expectCandidates("publisher"); // a second description does not restart the time
    await vi.advanceTimersByTimeAsync(3_999);
    expect(asked).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toEqual([4_000]);
    expect(trail).toEqual([
      "restart asked (publisher gathered no candidate in 4000 ms); the next after 10000 ms",
    ]);
  });

  it("does not count a candidate that came (or the end of gathering), nor a connection that connected", async () => {
    const { dog, asked } = watchdog();
    for (const end of ["candidate", "before", "connected"] as const) {
      dog.begin();
      dog.watch("subscriber", "new"); // its own deadline: 10 s from now
      if (end === "before") dog.gathered("subscriber"); // a candidate before the description
      dog.expectCandidates("subscriber");
      await vi.advanceTimersByTimeAsync(1_000);
      if (end === "candidate") dog.gathered("subscriber"); // sfu.ts: a candidate, or null
      if (end === "connected") dog.observe("subscriber", "connected");
      await vi.advanceTimersByTimeAsync(8_000);
      expect(asked).toEqual([]);
      dog.observe("subscriber", "connected");
    }
    dog.begin(); // new connections: a candidate of the old ones does not count
    dog.expectCandidates("subscriber");
    await vi.advanceTimersByTimeAsync(4_000);
    expect(asked).toHaveLength(1);
  });

  it("keeps a stalled connection in trouble when it is described again", async () => {
    const { dog, asked, trail } = watchdog();
    dog.begin();
    dog.watch("subscriber", "new");
    dog.expectCandidates("subscriber");
    await vi.advanceTimersByTimeAsync(4_000);
    expect(asked).toEqual([4_000]);
    await vi.advanceTimersByTimeAsync(4_000);
    dog.watch("subscriber", "new"); // the same answer sent again: its deadline is at 18 s
    await vi.advanceTimersByTimeAsync(6_000); // the wait after the first ask is over
    expect(asked).toEqual([4_000, 14_000]);
    expect(trail[1]).toBe("restart asked (not answered); the next after 20000 ms");
  });

  it("does not count a connection that connected in time, nor one never made", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "new");
    await vi.advanceTimersByTimeAsync(3_000);
    dog.observe("publisher", "connecting");
    dog.observe("publisher", "connected");
    dog.watch("publisher", "connected"); // a later answer while connected: nothing to time
    await vi.advanceTimersByTimeAsync(120_000);
    expect(asked).toEqual([]);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("asks at once when a connection fails", () => {
    const { dog, asked, trail } = watchdog();
    dog.begin();
    dog.watch("publisher", "new");
    dog.observe("publisher", "connected");
    dog.observe("publisher", "failed");
    expect(asked).toHaveLength(1);
    expect(trail[0]).toMatch(/^restart asked \(publisher failed\)/);
  });

  it("asks when a connection stays disconnected 5 s, not when it comes back sooner", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "connected");
    dog.observe("publisher", "disconnected");
    await vi.advanceTimersByTimeAsync(4_000);
    dog.observe("publisher", "connected");
    await vi.advanceTimersByTimeAsync(60_000);
    expect(asked).toEqual([]);
    dog.observe("publisher", "disconnected");
    await vi.advanceTimersByTimeAsync(4_999);
    expect(asked).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toHaveLength(1);
  });

  it("asks again while nothing answers: after 10 s, 20 s, 40 s, then every 60 s", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "failed");
    await vi.advanceTimersByTimeAsync(300_000);
    expect(gaps(asked)).toEqual([10_000, 20_000, 40_000, 60_000, 60_000, 60_000]);
  });

  it("waits as long when each answer's connections do not connect either", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "failed");
    let answered = 0;
    for (let second = 0; second < 200; second++) {
      if (asked.length > answered) answer(dog); // at once: the wait, not the answer, sets the pace
      answered = asked.length;
      await vi.advanceTimersByTimeAsync(1_000);
    }
    expect(gaps(asked)).toEqual([10_000, 20_000, 40_000, 60_000, 60_000]);
    expect(dog.reconnecting).toBe(true);
  });

  it("starts the waits again once the connections carry media", async () => {
    const { dog, asked, trail } = watchdog();
    dog.begin();
    dog.watch("publisher", "failed");
    await vi.advanceTimersByTimeAsync(10_000); // asked twice: the next wait is 20 s
    answer(dog);
    dog.observe("publisher", "connected");
    expect(dog.reconnecting).toBe(true); // until the room says every connection carries media
    dog.settled();
    expect(dog.reconnecting).toBe(false);
    expect(trail.at(-1)).toBe("connected: the restart waits start over");
    expect(vi.getTimerCount()).toBe(0);
    dog.observe("publisher", "failed");
    expect(asked).toEqual([0, 10_000, 10_000]); // at once
    answer(dog);
    await vi.advanceTimersByTimeAsync(20_000);
    expect(gaps(asked)).toEqual([10_000, 0, 10_000]); // 10 s after, not 40 s
  });

  it("asks again after a refusal that may pass, and stops at not_sfu_room", async () => {
    const { dog, asked, changes, trail } = watchdog();
    dog.begin();
    dog.watch("publisher", "failed");
    dog.refused("rate_limited");
    expect(dog.reconnecting).toBe(true);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(asked).toEqual([0, 10_000]);
    expect(trail[2]).toMatch(/^restart asked \(refused: rate_limited\)/);
    dog.refused("sfu_unavailable");
    await vi.advanceTimersByTimeAsync(20_000);
    expect(asked).toEqual([0, 10_000, 30_000]);
    changes.mockClear();
    dog.refused("not_sfu_room");
    expect(dog.reconnecting).toBe(false);
    expect(changes).toHaveBeenCalledOnce();
    dog.observe("publisher", "failed");
    await vi.advanceTimersByTimeAsync(300_000);
    expect(asked).toHaveLength(3);
    expect(trail.at(-1)).toBe("restart refused (not_sfu_room): no more");
    answer(dog); // the room's media starts again: so may asking
    dog.observe("publisher", "failed");
    expect(asked).toHaveLength(4);
  });

  it("is answered by new connections, and asks nothing more once they connect", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "new");
    dog.watch("subscriber", "connected");
    dog.observe("subscriber", "failed");
    answer(dog); // room_media: the old connections are gone, and their timers with them
    await vi.advanceTimersByTimeAsync(4_000);
    dog.observe("publisher", "connected");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(asked).toHaveLength(1);
    expect(dog.reconnecting).toBe(true); // not settled: the SFU's offer for the others is due
  });

  it("asks nothing while the signaling socket is away, and at most once when it is back", async () => {
    const { dog, asked, trail, signaling } = watchdog();
    dog.begin();
    dog.watch("publisher", "failed");
    expect(asked).toEqual([0]);
    signaling.open = false;
    await vi.advanceTimersByTimeAsync(120_000); // asks were due at 10 s, 30 s, 70 s
    expect(asked).toEqual([0]);
    expect(trail.filter((step) => step.startsWith("restart held back"))).toHaveLength(1);
    signaling.open = true;
    dog.signalingBack();
    expect(asked).toEqual([0, 120_000]);
    dog.signalingBack(); // nothing held back any more
    expect(asked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(19_999); // the wait after the second ask
    expect(asked).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toHaveLength(3);
  });

  it("asks nothing on the socket's return when the connections came back meanwhile", async () => {
    const { dog, asked, signaling } = watchdog();
    dog.begin();
    dog.watch("publisher", "connected");
    dog.observe("publisher", "disconnected");
    signaling.open = false;
    await vi.advanceTimersByTimeAsync(5_000); // due now: held back
    dog.observe("publisher", "connected"); // ICE came back by itself
    signaling.open = true;
    dog.signalingBack();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(asked).toEqual([]);
  });

  it("expects the SFU's first offer within 10 s of its being due, and asks when it does not come", async () => {
    const { dog, asked, trail } = watchdog();
    dog.begin();
    dog.watch("publisher", "connected");
    dog.expectOffer(true);
    await vi.advanceTimersByTimeAsync(6_000);
    dog.expectOffer(true); // still due: from when it became due, not from now
    dog.expectOffer(false); // came (the subscriber is watched from now on)
    dog.expectOffer(true); // due again (nobody sent, then someone did)
    await vi.advanceTimersByTimeAsync(9_999);
    expect(asked).toEqual([]);
    dog.expectOffer(true);
    await vi.advanceTimersByTimeAsync(1);
    expect(asked).toEqual([16_000]);
    expect(trail[0]).toMatch(/^restart asked \(no offer after 10000 ms\)/);
    await vi.advanceTimersByTimeAsync(10_000);
    expect(asked).toHaveLength(2); // the offer is still missing
    dog.begin(); // room_media: the new place's publisher connects, and nobody's offer is due yet
    dog.watch("publisher", "connected");
    await vi.advanceTimersByTimeAsync(120_000);
    expect(asked).toHaveLength(2);
  });

  it("asks nothing once media ends", async () => {
    const { dog, asked } = watchdog();
    dog.begin();
    dog.watch("publisher", "new");
    dog.watch("subscriber", "disconnected");
    dog.end();
    await vi.advanceTimersByTimeAsync(120_000);
    dog.observe("publisher", "failed"); // a late event of a closed connection
    expect(asked).toEqual([]);
    dog.begin();
    dog.watch("publisher", "failed");
    dog.end();
    expect(dog.reconnecting).toBe(false);
    await vi.advanceTimersByTimeAsync(120_000);
    expect(asked).toHaveLength(1);
    expect(vi.getTimerCount()).toBe(0);
  });
});
