import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Participant } from "../room/session";
import type { ProbeResult } from "../rtc/probe";
import { tileStatus } from "./components/RemoteTile";
import { StuckWatch } from "./hooks/stuck";
import { CONNECT_BOUND_MS, ConnectWatch, stuckText } from "./stuck";

const member = (id: string, changes: Partial<Participant> = {}): Participant => ({
  id,
  name: id,
  label: id,
  signedIn: false,
  media: { mic: true, camera: true, screen: false },
  camera: null,
  screen: null,
  connection: "new",
  reconnecting: false,
  recovery: null,
  host: false,
  hand: null,
  recording: false,
  recorder: false,
  formerIds: [],
  ...changes,
});

const DOWN: ProbeResult = {
  local: true,
  direct: false,
  relay: false,
  stunConfigured: true,
  turnConfigured: true,
  relayProblem: "unreachable",
};

describe("ConnectWatch", () => {
  it("names a member connecting for the bound, and forgets it once connected", () => {
    const watch = new ConnectWatch(1000);
    watch.update([member("ben"), member("cy", { connection: "connected" })], 0);
    expect(watch.stuck(999)).toEqual([]);
    expect(watch.nextDueMs(400)).toBe(600);
    expect(watch.stuck(1000)).toEqual(["ben"]);
    watch.update([member("ben", { connection: "connected" })], 1500);
    expect(watch.stuck(5000)).toEqual([]);
    expect(watch.nextDueMs(5000)).toBeNull();
  });

  it("leaves restarts and an away member to their own states, and starts afresh after", () => {
    const watch = new ConnectWatch(1000);
    watch.update([member("ben", { recovery: "restarting" }), member("cy", { reconnecting: true })], 0);
    expect(watch.stuck(5000)).toEqual([]);
    watch.update([member("ben"), member("cy")], 5000); // connecting again: a new start
    expect(watch.stuck(5999)).toEqual([]);
    expect(watch.stuck(6000)).toEqual(["ben", "cy"]);
    watch.update([member("cy")], 6000); // ben left
    expect(watch.stuck(6000)).toEqual(["cy"]);
  });
});

describe("stuckText", () => {
  it("says the relay is why on a relay-only page", () => {
    expect(stuckText(["ben"], true, DOWN)).toBe(
      `No media connection to ben after ${CONNECT_BOUND_MS / 1000} seconds. This page sends media ` +
        "only through the relay (?ice=relay), and the relay server could not be reached.",
    );
    expect(stuckText(["ben"], true, { ...DOWN, relayProblem: "refused" })).toMatch(
      /and the relay server refused the credentials\.$/,
    );
    expect(stuckText(["ben"], true, { ...DOWN, turnConfigured: false, relayProblem: null })).toMatch(
      /and this server has no relay\.$/,
    );
  });

  it("says checking first, and names at most two", () => {
    expect(stuckText(["ben", "cy"], false, null)).toMatch(
      /^No media connection to ben and cy after .* Checking why…$/,
    );
    expect(stuckText(["a", "b", "c", "d"], false, null)).toMatch(/^No media connection to a, b and 2 more /);
  });

  it("blames no relay when the relay works", () => {
    expect(stuckText(["ben"], false, { ...DOWN, relay: true, relayProblem: null })).toMatch(
      /A firewall between you may be blocking it; it keeps trying\.$/,
    );
    expect(stuckText(["ben"], false, DOWN)).toMatch(
      /No direct path worked, and the relay server could not be reached\.$/,
    );
  });
});

describe("StuckWatch", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  const setUp = () => {
    const freshIceServers = vi.fn(() => Promise.resolve([{ urls: "turn:relay.test:3478" }]));
    const probe = vi.fn(() => Promise.resolve(DOWN));
    const watch = new StuckWatch({ freshIceServers }, true, probe, () => Date.now(), 1000);
    const seen: (string | null)[] = [];
    watch.subscribe(() => seen.push(watch.snapshot.text));
    return { watch, freshIceServers, probe, seen };
  };

  it("says nothing within the bound, then checks once and says why", async () => {
    const { watch, freshIceServers, probe, seen } = setUp();
    watch.feed([member("ben")], false);
    await vi.advanceTimersByTimeAsync(999);
    expect(watch.snapshot.text).toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    expect([...watch.snapshot.ids]).toEqual(["ben"]);
    expect(seen[0]).toMatch(/Checking why…$/);
    await vi.advanceTimersByTimeAsync(0);
    expect(freshIceServers).toHaveBeenCalledTimes(1);
    expect(probe).toHaveBeenCalledWith([{ urls: "turn:relay.test:3478" }]);
    expect(watch.snapshot.text).toMatch(/the relay server could not be reached\.$/);
    watch.feed([member("ben"), member("cy")], false); // another arrives: no second check
    await vi.advanceTimersByTimeAsync(5000);
    expect(watch.snapshot.text).toMatch(/^No media connection to ben and cy .*could not be reached\.$/);
    expect(probe).toHaveBeenCalledTimes(1);
    watch.dispose();
  });

  it("names nobody while the room is on the SFU, which has a notice of its own", async () => {
    const { watch, probe } = setUp();
    watch.feed([member("ben")], true);
    await vi.advanceTimersByTimeAsync(5000);
    expect(watch.snapshot).toEqual({ ids: new Set(), text: null });
    expect(probe).not.toHaveBeenCalled();
    watch.feed([member("ben")], false); // a mesh: the bound starts now
    await vi.advanceTimersByTimeAsync(1000);
    expect([...watch.snapshot.ids]).toEqual(["ben"]);
    watch.dispose();
  });

  it("clears when the connection comes up after all", async () => {
    const { watch } = setUp();
    watch.feed([member("ben")], false);
    await vi.advanceTimersByTimeAsync(1000);
    expect(watch.snapshot.ids.has("ben")).toBe(true);
    watch.feed([member("ben", { connection: "connected" })], false);
    expect(watch.snapshot).toEqual({ ids: new Set(), text: null });
    watch.dispose();
  });
});

describe("tileStatus", () => {
  it("says Can't connect instead of Connecting… once past the bound", () => {
    expect(tileStatus(member("ben"))).toBe("Connecting…");
    expect(tileStatus(member("ben"), true)).toBe("Can't connect");
    expect(tileStatus(member("ben", { connection: "connected" }), true)).toBeNull();
    expect(tileStatus(member("ben", { recovery: "failed" }), true)).toBe("Media connection lost");
  });
});
