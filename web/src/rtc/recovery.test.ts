import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakePeerConnection, settleNow } from "../test/fakes";
import { Mesh, type MeshOptions } from "./mesh";
import type { SignalPayload } from "./peer";

class FakeStream {
  constructor(readonly tracks: unknown[] = []) {}
}

const track = (kind: string, id = kind) => ({ kind, id }) as unknown as MediaStreamTrack;
const FRESH: RTCIceServer[] = [{ urls: ["turn:turn.example:3478"], username: "9:u", credential: "c" }];

/** A mesh whose connections are fakes; `sent` is what it signalled, in order. */
function mesh(options: MeshOptions = {}) {
  const made: FakePeerConnection[] = [];
  const sent: { to: string; payload: SignalPayload }[] = [];
  const m = new Mesh(
    (to, payload) => sent.push({ to, payload }),
    { iceServers: [{ urls: ["stun:old.example"] }] },
    (config) => {
      const pc = new FakePeerConnection(`pc${made.length}`);
      pc.configuration = config;
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    { streamFactory: () => new FakeStream() as unknown as MediaStream, ...options },
  );
  const last = () => made[made.length - 1]!;
  const resets = () => sent.filter((s) => s.payload.reset).map((s) => s.payload.reset!.reason);
  return { m, made, sent, last, resets, recovery: () => m.remote[0]?.recovery };
}

/**
 * Two meshes wired through an in-order server that can hold messages, as members "a" and
 * "b": b's id is greater, so b is polite toward a and a impolite toward b.
 */
function wiredPair() {
  const queues = { a: [] as SignalPayload[], b: [] as SignalPayload[] };
  let held = false;
  const deliver = () => {
    if (held) return;
    while (queues.a.length) void a.m.receive("b", queues.a.shift()!);
    while (queues.b.length) void b.m.receive("a", queues.b.shift()!);
  };
  const side = (self: "a" | "b") => {
    const other = self === "a" ? "b" : "a";
    const made: FakePeerConnection[] = [];
    const sent: SignalPayload[] = [];
    const m = new Mesh(
      (_to, payload) => {
        sent.push(payload);
        queues[other].push(payload);
        setTimeout(deliver, 0);
      },
      {},
      () => {
        const pc = new FakePeerConnection(`${self}${made.length}`);
        made.push(pc);
        return pc as unknown as RTCPeerConnection;
      },
      { streamFactory: () => new FakeStream() as unknown as MediaStream },
    );
    return { m, made, sent, last: () => made[made.length - 1]!, recovery: () => m.remote[0]?.recovery };
  };
  const a = side("a");
  const b = side("b");
  return {
    a,
    b,
    hold: () => (held = true),
    release: () => {
      held = false;
      deliver();
    },
  };
}

beforeEach(() => {
  vi.useFakeTimers();
  (globalThis as { MediaStream?: unknown }).MediaStream = FakeStream;
});
afterEach(() => {
  vi.useRealTimers();
  delete (globalThis as { MediaStream?: unknown }).MediaStream;
});

describe("ICE restart", () => {
  it("on `failed`: fresh ICE servers, setConfiguration, restartIce, after 1 s, 2 s, 4 s; reset by `connected`", async () => {
    const freshIceServers = vi.fn(async () => FRESH);
    const { m, last, recovery } = mesh({ freshIceServers });
    m.add("b", false);
    const pc = last();
    const configsAtRestart: number[] = [];
    const restartIce = pc.restartIce.bind(pc);
    pc.restartIce = () => {
      configsAtRestart.push(pc.configurations.length);
      restartIce();
    };

    pc.setIceState("failed");
    expect(recovery()).toBe("restarting");
    await vi.advanceTimersByTimeAsync(999);
    expect(pc.restarts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(freshIceServers).toHaveBeenCalledTimes(1);
    expect(pc.restarts).toBe(1);
    expect(configsAtRestart).toEqual([1]); // the new servers were set before the restart
    expect(pc.configurations[0]).toEqual({ iceServers: FRESH }); // the rest kept
    expect(pc.getConfiguration().iceServers).toEqual(FRESH);

    pc.setIceState("checking");
    pc.setIceState("failed"); // the first restart did not help
    await vi.advanceTimersByTimeAsync(1999);
    expect(pc.restarts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(pc.restarts).toBe(2);

    pc.setIceState("connected");
    expect(recovery()).toBeNull();
    expect((await m.stats()).b?.iceRestarts).toBe(2);

    pc.setIceState("failed"); // a new failure starts again from the first delay
    await vi.advanceTimersByTimeAsync(1000);
    expect(pc.restarts).toBe(3);
  });

  it("leaves a short `disconnected` alone and restarts after 3 s of it", async () => {
    const { m, last, recovery } = mesh();
    m.add("b", false);
    const pc = last();
    pc.setIceState("connected");
    pc.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(2900);
    pc.setIceState("connected"); // it came back by itself
    await vi.advanceTimersByTimeAsync(30_000);
    expect(pc.restarts).toBe(0);
    expect(recovery()).toBeNull();

    pc.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(3000);
    expect(recovery()).toBe("restarting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(pc.restarts).toBe(1);
  });

  it("connectionState `failed` counts even while ICE still says `disconnected` (as Chromium does)", async () => {
    const { m, last, recovery } = mesh();
    m.add("b", false);
    const pc = last();
    pc.setIceState("connected");
    pc.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(500);
    pc.setConnectionState("failed"); // no grace period for a failure
    expect(recovery()).toBe("restarting");
    await vi.advanceTimersByTimeAsync(1000);
    expect(pc.restarts).toBe(1);
  });

  it("the same state reported again does not start the grace period over", async () => {
    const { m, last } = mesh();
    m.add("b", false);
    const pc = last();
    pc.setIceState("connected");
    pc.setIceState("disconnected");
    await vi.advanceTimersByTimeAsync(2000);
    pc.onconnectionstatechange?.(); // another event, same states
    pc.oniceconnectionstatechange?.();
    await vi.advanceTimersByTimeAsync(1000 + 1000);
    expect(pc.restarts).toBe(1);
  });

  it("a restart that brings no `connected` within its time counts as failed", async () => {
    const { m, last } = mesh();
    m.add("b", false);
    const pc = last();
    pc.setIceState("failed");
    await vi.advanceTimersByTimeAsync(1000);
    expect(pc.restarts).toBe(1);
    pc.setIceState("checking"); // and nothing more
    await vi.advanceTimersByTimeAsync(10_000 + 2000);
    expect(pc.restarts).toBe(2);
  });

  it("restarts with the servers in hand when fresh ones do not come in time", async () => {
    const freshIceServers = vi.fn(() => new Promise<RTCIceServer[] | null>(() => {}));
    const { m, last } = mesh({ freshIceServers });
    m.add("b", false);
    const pc = last();
    pc.setIceState("failed");
    await vi.advanceTimersByTimeAsync(1000);
    expect(freshIceServers).toHaveBeenCalledTimes(1);
    await vi.advanceTimersByTimeAsync(4999);
    expect(pc.restarts).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(pc.restarts).toBe(1);
    expect(pc.configurations).toEqual([]);
  });

  it("mesh.restartIce(id) restarts at once, without showing trouble on a healthy connection", async () => {
    const freshIceServers = vi.fn(async () => FRESH);
    const { m, made, recovery } = mesh({ freshIceServers });
    m.add("b", false);
    m.add("c", false);
    made[0]!.setIceState("connected");
    m.restartIce("b");
    await vi.advanceTimersByTimeAsync(0);
    expect(made.map((pc) => pc.restarts)).toEqual([1, 0]);
    expect(recovery()).toBeNull();
    await vi.advanceTimersByTimeAsync(60_000); // still connected: nothing more happens
    expect(made.map((pc) => pc.restarts)).toEqual([1, 0]);
    m.restartIce();
    await vi.advanceTimersByTimeAsync(0);
    expect(made.map((pc) => pc.restarts)).toEqual([2, 1]);
  });
});

/** Fail ICE until the three restarts are spent. */
async function exhaustRestarts(pc: FakePeerConnection): Promise<void> {
  for (const delay of [1000, 2000, 4000]) {
    pc.setIceState("failed");
    await vi.advanceTimersByTimeAsync(delay);
    pc.setIceState("checking");
  }
  pc.setIceState("failed");
  await vi.advanceTimersByTimeAsync(0);
}

describe("Rebuilding a connection", () => {
  it("restarts exhausted, the impolite side rebuilds with its tracks and sends reset", async () => {
    const { m, made, sent, last, resets, recovery } = mesh();
    m.setTrack("audio", track("audio", "mic"));
    m.add("b", false);
    await settleNow();
    const old = last();
    await exhaustRestarts(old);
    expect(old.restarts).toBe(3);
    expect(resets()).toEqual(["ice_failed"]);
    expect(made).toHaveLength(2);
    expect(old.closed).toBe(true);
    expect(recovery()).toBe("rebuilding");
    const fresh = last();
    expect(
      fresh.transceivers.map((t) => [t.direction, (t.sender.track as MediaStreamTrack | null)?.id]),
    ).toEqual([
      ["recvonly", undefined], // video: the impolite side offers to receive it
      ["sendrecv", "mic"],
    ]);
    await vi.advanceTimersByTimeAsync(1);
    // The reset goes out before anything of the new connection, which offers.
    const resetAt = sent.findIndex((s) => s.payload.reset);
    const offerAt = sent.findIndex((s, i) => i > resetAt && s.payload.description?.type === "offer");
    expect(offerAt).toBeGreaterThan(resetAt);
    expect(fresh.localDescription?.sdp).toBe(sent[offerAt]?.payload.description?.sdp);
    fresh.setIceState("connected");
    expect(recovery()).toBeNull();
    expect((await m.stats()).b).toMatchObject({ iceRestarts: 3, rebuilds: 1 });
  });

  it("restarts exhausted, the polite side waits for the reset, then says it failed", async () => {
    const { m, made, last, resets, recovery } = mesh();
    m.add("a", true);
    await exhaustRestarts(last());
    expect(resets()).toEqual([]);
    expect(made).toHaveLength(1);
    expect(recovery()).toBe("rebuilding");
    await vi.advanceTimersByTimeAsync(10_000);
    expect(recovery()).toBe("failed");
    // The reset comes after all: the polite side rebuilds, and does not answer with a reset.
    await m.receive("a", { reset: { reason: "ice_failed" } });
    expect(made).toHaveLength(2);
    expect(made[0]!.closed).toBe(true);
    expect(recovery()).toBe("rebuilding");
    expect(resets()).toEqual([]);
    last().setIceState("connected");
    expect(recovery()).toBeNull();
  });

  it("`rejected` makes the impolite side rebuild and send reset", async () => {
    const { m, made, resets } = mesh();
    m.add("b", false);
    void m.receive("b", { rejected: { type: "offer", message: "OperationError: no" } });
    await vi.advanceTimersByTimeAsync(0);
    expect(resets()).toEqual(["rejected"]);
    expect(made).toHaveLength(2);
  });

  it("at most 3 rebuilds a minute per member; then it fails, and a minute later it may again", async () => {
    const { m, made, recovery } = mesh();
    m.add("a", true);
    for (let i = 0; i < 3; i++) await m.receive("a", { reset: { reason: "ice_failed" } });
    expect(made).toHaveLength(4);
    await vi.advanceTimersByTimeAsync(59_000);
    await m.receive("a", { reset: { reason: "ice_failed" } });
    expect(made).toHaveLength(4); // not rebuilt
    expect(recovery()).toBe("failed");
    expect((await m.stats()).a?.rebuilds).toBe(3);
    await vi.advanceTimersByTimeAsync(1000);
    await m.receive("a", { reset: { reason: "ice_failed" } });
    expect(made).toHaveLength(5);
    expect(recovery()).toBe("rebuilding");
  });

  it("the impolite side's rebuilds are limited too, so two sides cannot storm", async () => {
    const { m, made, resets, recovery } = mesh();
    m.add("b", false);
    for (let i = 0; i < 5; i++) {
      void m.receive("b", { rejected: { type: "offer", message: "no" } });
      await vi.advanceTimersByTimeAsync(0);
    }
    expect(resets()).toEqual(["rejected", "rejected", "rejected"]);
    expect(made).toHaveLength(4);
    expect(recovery()).toBe("failed");
  });
});

describe("A pair recovers", () => {
  it("both join at the same instant with tracks: negotiated with no timer", async () => {
    const { a, b } = wiredPair();
    const start = Date.now();
    for (const side of [a, b]) side.m.setTrack("audio", track("audio"));
    a.m.add("b", false);
    b.m.add("a", true);
    expect(await settleNow()).toBeLessThan(50);
    expect([a.last().signalingState, b.last().signalingState]).toEqual(["stable", "stable"]);
    // a offered first; b answered, then offered for its own track.
    expect(a.sent.find((p) => p.description)?.description?.type).toBe("offer");
    expect(b.sent.filter((p) => p.description).map((p) => p.description?.type)).toEqual(["answer", "offer"]);
    expect(Date.now() - start).toBeLessThan(50);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("an offer that does not apply: rejected, reset, both rebuilt, negotiated again", async () => {
    const { a, b } = wiredPair();
    a.m.setTrack("video", track("video"));
    b.m.setTrack("video", track("video"));
    a.m.add("b", false);
    b.m.add("a", true);
    b.last().refuseRemote = () => true; // b's first connection cannot take a's offer
    await settleNow(500);
    expect(b.sent.filter((p) => p.rejected).map((p) => p.rejected?.type)).toEqual(["offer"]);
    expect(a.sent.filter((p) => p.reset).map((p) => p.reset?.reason)).toEqual(["rejected"]);
    expect(b.sent.filter((p) => p.reset)).toEqual([]); // a reset is never answered with one
    expect([a.made.length, b.made.length]).toEqual([2, 2]);
    const [pcA, pcB] = [a.last(), b.last()];
    expect([pcA.signalingState, pcB.signalingState]).toEqual(["stable", "stable"]);
    expect(pcB.remoteDescription?.sdp).toContain(pcA.sessionId);
    expect(pcA.remoteDescription?.sdp).toContain(pcB.sessionId);
    expect([a.recovery(), b.recovery()]).toEqual(["rebuilding", "rebuilding"]);
    pcA.setIceState("connected");
    pcB.setIceState("connected");
    expect([a.recovery(), b.recovery()]).toEqual([null, null]);
  });

  it("signals of the replaced connection still in flight are not taken for the new one", async () => {
    const { a, b, hold, release } = wiredPair();
    a.m.add("b", false);
    b.m.add("a", true);
    await settleNow();
    const oldB = b.last();
    // b renegotiates (a screen share, say) just as a gives up on ICE and rebuilds: b's offer
    // and a's restart offer, reset and new offer all cross on the wire.
    hold();
    b.m.setTrack("screen", track("video", "screen"));
    await exhaustRestarts(a.last());
    expect(a.sent.filter((p) => p.reset)).toHaveLength(1);
    release();
    await settleNow(500);
    const trail = (await a.m.stats()).b?.trail ?? [];
    expect(trail.some((s) => s.startsWith("stale description dropped"))).toBe(true);
    expect(oldB.closed).toBe(true);
    const [pcA, pcB] = [a.last(), b.last()];
    expect([pcA.signalingState, pcB.signalingState]).toEqual(["stable", "stable"]);
    expect(pcA.remoteDescription?.sdp).toContain(pcB.sessionId);
    expect(pcB.remoteDescription?.sdp).toContain(pcA.sessionId);
    expect(b.sent.filter((p) => p.reset)).toEqual([]);
  });
});
