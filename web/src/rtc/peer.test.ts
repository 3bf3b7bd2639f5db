import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakePeerConnection, asPc, settleNow, ufragOf } from "../test/fakes";
import {
  GATHERING_STALL_MS,
  MAX_GATHERING_RESTARTS,
  PeerLink,
  type LinkFailure,
  type SignalPayload,
} from "./peer";

/**
 * Two PeerLinks wired through an in-order "server" that can hold messages: `a` is impolite,
 * `b` polite, as the server decides by member id.
 */
function pair() {
  const pcA = new FakePeerConnection("a");
  const pcB = new FakePeerConnection("b");
  const toA: SignalPayload[] = [];
  const toB: SignalPayload[] = [];
  const sentByA: SignalPayload[] = [];
  const sentByB: SignalPayload[] = [];
  const errors: unknown[] = [];
  const failures: { side: string; failure: LinkFailure }[] = [];
  let held = false;
  const flush = () => {
    if (held) return;
    while (toA.length) void a.receive(toA.shift()!);
    while (toB.length) void b.receive(toB.shift()!);
  };
  const link = (
    side: string,
    polite: boolean,
    pc: FakePeerConnection,
    inbox: SignalPayload[],
    log: SignalPayload[],
  ) =>
    new PeerLink(
      side === "a" ? "b" : "a",
      polite,
      asPc(pc),
      (payload) => {
        log.push(payload);
        inbox.push(payload);
        setTimeout(flush, 0);
      },
      { onError: (e) => errors.push(e), onFailure: (failure) => failures.push({ side, failure }) },
    );
  const a: PeerLink = link("a", false, pcA, toB, sentByA);
  const b: PeerLink = link("b", true, pcB, toA, sentByB);
  return {
    a,
    b,
    pcA,
    pcB,
    sentByA,
    sentByB,
    errors,
    failures,
    hold: () => (held = true),
    release: () => {
      held = false;
      flush();
    },
  };
}

const offers = (sent: SignalPayload[]) => sent.filter((p) => p.description?.type === "offer");

/** Both sides stable with each other's descriptions, quickly, with nothing left waiting. */
function expectNegotiated(pcA: FakePeerConnection, pcB: FakePeerConnection, startedAt: number) {
  expect(pcA.signalingState).toBe("stable");
  expect(pcB.signalingState).toBe("stable");
  expect(pcA.remoteDescription).not.toBeNull();
  expect(pcB.remoteDescription).not.toBeNull();
  // Each hop of the fakes takes a tick (1 ms of fake time); a timeout would take seconds.
  expect(Date.now() - startedAt).toBeLessThan(50);
  expect(vi.getTimerCount()).toBe(0);
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("PeerLink perfect negotiation (webrtc-pc 10.7)", () => {
  it("both sides add tracks at the same instant: the impolite side offers, the polite side follows", async () => {
    const { pcA, pcB, sentByA, sentByB, errors, b } = pair();
    const start = Date.now();
    pcA.addTrack("micA");
    pcB.addTrack("micB");
    await settleNow();
    expectNegotiated(pcA, pcB, start);
    expect(b.trail.some((s) => s.startsWith("the first offer is the impolite side's"))).toBe(true);
    // The first offer is a's; b offers only after answering it, for its own track.
    const first = [...sentByA, ...sentByB].find((p) => p.description?.type === "offer");
    expect(first).toBe(offers(sentByA)[0]);
    expect(offers(sentByB)).toHaveLength(1);
    expect(sentByB.indexOf(offers(sentByB)[0]!)).toBeGreaterThan(
      sentByB.findIndex((p) => p.description?.type === "answer"),
    );
    expect(errors).toEqual([]);
  });

  for (const first of ["polite", "impolite"] as const) {
    it(`the ${first} side starting first still connects, with no glare and no timer`, async () => {
      const { pcA, pcB, sentByB, errors } = pair();
      const start = Date.now();
      (first === "polite" ? pcB : pcA).addTrack("early");
      await settleNow();
      // The polite side alone never offers; it waits, without a timer, for the impolite side.
      if (first === "polite") expect(sentByB).toEqual([]);
      (first === "polite" ? pcA : pcB).addTrack("late");
      await settleNow();
      expectNegotiated(pcA, pcB, start);
      expect(errors).toEqual([]);
    });
  }

  it("glare in a renegotiation: the impolite offer wins, the polite one rolls back and comes again", async () => {
    const { a, b, pcA, pcB, errors, failures, hold, release } = pair();
    const start = Date.now();
    pcA.addTrack("micA");
    await settleNow();
    hold(); // both offers cross on the wire
    pcA.addTrack("screenA");
    pcB.addTrack("screenB");
    await settleNow();
    expect(pcA.signalingState).toBe("have-local-offer");
    expect(pcB.signalingState).toBe("have-local-offer");
    const offerFromA = pcA.localDescription?.sdp;
    release();
    await settleNow();
    expect(a.trail).toContain("remote offer (collision) [have-local-offer]");
    expect(b.trail).toContain("remote offer (collision) [have-local-offer]");
    // b rolled back, answered a's offer, then offered its own screen again, which a answered.
    const collision = b.trail.indexOf("remote offer (collision) [have-local-offer]");
    const answered = b.trail.indexOf("send answer [stable]", collision);
    expect(answered).toBeGreaterThan(collision);
    expect(b.trail.indexOf("send offer [have-local-offer]", answered)).toBeGreaterThan(answered);
    expect(pcA.localDescription?.type).toBe("answer");
    expect(pcA.remoteDescription?.type).toBe("offer");
    expect(pcB.remoteDescription?.type).toBe("answer");
    expect(pcB.remoteDescription?.sdp).not.toBe(offerFromA);
    expectNegotiated(pcA, pcB, start);
    expect(errors).toEqual([]);
    expect(failures).toEqual([]); // an ignored offer is not a failure
  });

  it("holds candidates that arrive before a remote description, and drops those of another ufrag", async () => {
    const pc = new FakePeerConnection("p");
    const sent: SignalPayload[] = [];
    const errors: unknown[] = [];
    const link = new PeerLink("x", true, asPc(pc), (p) => sent.push(p), { onError: (e) => errors.push(e) });
    const offer = `v=0\r\no=- 77 1 IN IP4 127.0.0.1\r\na=ice-ufrag:cur\r\n`;
    const candidate = (ufrag: string) => ({
      candidate: `candidate:1 1 udp 1 10.0.0.1 9 typ host ufrag ${ufrag}`,
      sdpMid: "0",
      sdpMLineIndex: 0,
      usernameFragment: ufrag,
    });
    void link.receive({ candidate: candidate("old") }); // of an offer its sender rolled back
    void link.receive({ candidate: candidate("cur") });
    await settleNow();
    expect(pc.candidates).toEqual([]);
    void link.receive({ description: { type: "offer", sdp: offer } });
    await settleNow();
    expect(pc.candidates.map((c) => c.usernameFragment)).toEqual(["cur"]);
    expect(link.trail.some((s) => s.startsWith("held candidate of another description dropped"))).toBe(true);
    expect(sent.some((p) => p.description?.type === "answer")).toBe(true);
    expect(errors).toEqual([]);
  });

  it("trickles its own candidates, each with its ufrag, and never an end-of-candidates", async () => {
    const { pcA, sentByA, hold } = pair();
    hold();
    pcA.addTrack("mic");
    await settleNow();
    const candidates = sentByA.filter((p) => p.candidate).map((p) => p.candidate!);
    expect(candidates.length).toBeGreaterThan(0);
    expect(candidates.every((c) => c.candidate.startsWith("candidate:a"))).toBe(true);
    expect(candidates.every((c) => c.usernameFragment === ufragOf(pcA.localDescription?.sdp))).toBe(true);
    pcA.onicecandidate?.({ candidate: null });
    expect(sentByA.filter((p) => p.candidate)).toHaveLength(candidates.length);
  });

  it("restartIce: the next offer carries a new ufrag and the answer one too", async () => {
    const { a, pcA, pcB } = pair();
    pcA.addTrack("mic");
    await settleNow();
    const before = [ufragOf(pcA.localDescription?.sdp), ufragOf(pcB.localDescription?.sdp)];
    a.restartIce();
    await settleNow();
    expect(pcA.restarts).toBe(1);
    const after = [ufragOf(pcA.localDescription?.sdp), ufragOf(pcB.localDescription?.sdp)];
    expect(after[0]).not.toBe(before[0]);
    expect(after[1]).not.toBe(before[1]);
    expect(pcA.signalingState).toBe("stable");
    expect(a.trail.some((s) => s.startsWith("restartIce"))).toBe(true);
  });
});

describe("PeerLink when a first offer goes unanswered", () => {
  it("restartIce makes the impolite side's first offer again (it was lost with the socket)", async () => {
    const pc = new FakePeerConnection("p");
    const sent: SignalPayload[] = [];
    const link = new PeerLink("x", false, asPc(pc), (p) => sent.push(p));
    pc.addTransceiver("audio", { direction: "recvonly" });
    await settleNow();
    expect(offers(sent)).toHaveLength(1);
    link.restartIce();
    await settleNow();
    expect(offers(sent)).toHaveLength(2);
    expect(ufragOf(offers(sent)[1]!.description?.sdp)).not.toBe(ufragOf(offers(sent)[0]!.description?.sdp));
    expect(pc.signalingState).toBe("have-local-offer");
  });
});

describe("PeerLink when its ICE agent gathers nothing", () => {
  const candidatesOf = (sent: SignalPayload[]) => sent.filter((p) => p.candidate).map((p) => p.candidate!);

  it("the polite side's first answer gathered nothing: it restarts ICE once the stall time passes", async () => {
    const { b, pcA, pcB, sentByB, errors } = pair();
    pcB.stallGatherings = 1;
    pcA.addTrack("mic");
    await settleNow();
    expect(pcB.localDescription?.type).toBe("answer");
    expect(candidatesOf(sentByB)).toEqual([]);
    await vi.advanceTimersByTimeAsync(GATHERING_STALL_MS - 200); // settleNow took up to 100
    expect(pcB.restarts).toBe(0);
    await vi.advanceTimersByTimeAsync(200);
    await settleNow();
    expect(pcB.restarts).toBe(1);
    expect(b.trail.some((s) => s.startsWith(`no candidate in ${GATHERING_STALL_MS} ms`))).toBe(true);
    // The restart's offer has new credentials, and this time its candidates go out.
    const ufrag = ufragOf(pcB.localDescription?.sdp);
    expect(candidatesOf(sentByB).map((c) => c.usernameFragment)).toContain(ufrag);
    expect(ufragOf(pcA.remoteDescription?.sdp)).toBe(ufrag);
    expect(pcA.signalingState).toBe("stable");
    expect(pcB.signalingState).toBe("stable");
    expect(vi.getTimerCount()).toBe(0);
    expect(errors).toEqual([]);
  });

  it(`restarts at most ${MAX_GATHERING_RESTARTS} times`, async () => {
    const { pcA, pcB } = pair();
    pcA.stallGatherings = 100;
    pcA.addTrack("mic");
    await settleNow();
    for (let i = 0; i < MAX_GATHERING_RESTARTS + 2; i += 1) {
      await vi.advanceTimersByTimeAsync(GATHERING_STALL_MS);
      await settleNow();
    }
    expect(pcA.restarts).toBe(MAX_GATHERING_RESTARTS);
    expect(pcB.restarts).toBe(0);
    expect(vi.getTimerCount()).toBe(0);
  });

  it("leaves alone a connection that connected, and a gathering that completed with nothing", async () => {
    for (const how of ["connected", "complete"] as const) {
      const { pcA, pcB } = pair();
      pcB.stallGatherings = 1;
      pcA.addTrack("mic");
      await settleNow();
      if (how === "connected") pcB.setIceState("connected");
      else pcB.iceGatheringState = "complete"; // relay-only, its relay unreachable, say
      await vi.advanceTimersByTimeAsync(GATHERING_STALL_MS);
      await settleNow();
      expect(pcB.restarts).toBe(0);
    }
  });

  it("the impolite side waits for the answer to its first offer before it counts", async () => {
    const { a, pcA, pcB, sentByA, hold, release } = pair();
    pcA.stallGatherings = 1;
    hold(); // the answer is late: the polite page is busy, say
    pcA.addTrack("mic");
    await settleNow();
    await vi.advanceTimersByTimeAsync(3 * GATHERING_STALL_MS);
    expect(pcA.restarts).toBe(0);
    expect(offers(sentByA)).toHaveLength(1); // no second offer for the late answer to meet
    release();
    await settleNow();
    expect(pcA.signalingState).toBe("stable");
    await vi.advanceTimersByTimeAsync(GATHERING_STALL_MS);
    await settleNow();
    expect(pcA.restarts).toBe(1);
    expect(ufragOf(pcB.remoteDescription?.sdp)).toBe(ufragOf(pcA.localDescription?.sdp));
    expect(a.trail.filter((s) => s.startsWith("no candidate in"))).toHaveLength(1);
  });

  it("counts a candidate without its ufrag as the current description's", async () => {
    const { pcA, pcB } = pair();
    pcB.stallGatherings = 1;
    pcA.addTrack("mic");
    await settleNow();
    pcB.onicecandidate?.({
      candidate: {
        candidate: "candidate:x 1 udp 1 127.0.0.1 9 typ host",
        toJSON: () => ({
          candidate: "candidate:x 1 udp 1 127.0.0.1 9 typ host",
          sdpMid: "0",
          sdpMLineIndex: 0,
        }),
      },
    });
    await vi.advanceTimersByTimeAsync(GATHERING_STALL_MS);
    await settleNow();
    expect(pcB.restarts).toBe(0);
  });

  it("does not watch a renegotiation that keeps credentials that gathered", async () => {
    const { pcA, pcB } = pair();
    pcA.addTrack("mic");
    await settleNow();
    pcB.stallGatherings = 1; // same ufrag: a browser gathers nothing new, and need not
    pcB.addTrack("cam");
    await settleNow();
    expect(vi.getTimerCount()).toBe(0);
    expect(pcB.restarts).toBe(0);
  });
});

describe("PeerLink when a description does not apply", () => {
  it("polite side: says `rejected` with the type and reason, reports it, and stops offering", async () => {
    const { pcA, pcB, sentByB, failures, errors } = pair();
    pcB.refuseRemote = (d) => d.type === "offer";
    pcA.addTrack("mic");
    pcB.addTrack("cam");
    await settleNow();
    const rejected = sentByB.filter((p) => p.rejected);
    expect(rejected).toHaveLength(1);
    expect(rejected[0]!.rejected).toEqual({
      type: "offer",
      message: "OperationError: Failed to set remote offer sdp",
    });
    expect(failures).toEqual([
      { side: "b", failure: "description_failed" },
      { side: "a", failure: "rejected" }, // a learns it through `rejected`
    ]);
    expect(errors).toHaveLength(1);
    // Waiting for the reset: b's own negotiationneeded does not offer on the broken connection.
    pcB.refuseRemote = null;
    pcB.needNegotiation();
    await settleNow();
    expect(offers(sentByB)).toEqual([]);
  });

  it("impolite side: reports the failure and sends nothing about it", async () => {
    const { pcA, pcB, sentByA, failures } = pair();
    pcA.addTrack("mic");
    await settleNow();
    pcA.refuseRemote = (d) => d.type === "offer";
    pcB.addTrack("screen"); // b renegotiates; its offer does not apply at a
    await settleNow();
    expect(failures).toEqual([{ side: "a", failure: "description_failed" }]);
    expect(sentByA.some((p) => p.rejected || p.reset)).toBe(false);
  });

  it("an answer that does not apply is a failure too", async () => {
    const { pcA, pcB, sentByB, failures } = pair();
    pcA.addTrack("mic");
    await settleNow();
    pcB.refuseRemote = (d) => d.type === "answer";
    pcB.addTrack("screen");
    await settleNow();
    expect(sentByB.find((p) => p.rejected)?.rejected?.type).toBe("answer");
    expect(failures[0]).toEqual({ side: "b", failure: "description_failed" });
  });

  it("`rejected` matters only to the impolite side", async () => {
    const impolite = pair();
    void impolite.a.receive({ rejected: { type: "offer", message: "no" } });
    await settleNow();
    expect(impolite.failures).toEqual([{ side: "a", failure: "rejected" }]);
    const polite = pair();
    void polite.b.receive({ rejected: { type: "answer", message: "no" } });
    await settleNow();
    expect(polite.failures).toEqual([]);
    expect(polite.b.trail.some((s) => s.startsWith("our answer did not apply there"))).toBe(true);
  });
});

describe("PeerLink with an answer it did not ask for", () => {
  it("drops a duplicate answer, and an answer to no offer, with no failure and no rebuild", async () => {
    const { a, b, pcA, pcB, sentByA, sentByB, failures, errors } = pair();
    pcA.addTrack("mic");
    await settleNow();
    expectNegotiated(pcA, pcB, Date.now() - 1);
    const answer = sentByB.find((p) => p.description?.type === "answer")!;
    const remote = pcA.remoteDescription;
    void a.receive(answer); // the same answer again, in "stable"
    await settleNow();
    expect(pcA.signalingState).toBe("stable");
    expect(pcA.remoteDescription).toBe(remote);
    // The polite side never offered here: any answer it gets answers nothing.
    const offer = sentByA.find((p) => p.description?.type === "offer")!;
    void b.receive({ description: { type: "answer", sdp: offer.description!.sdp } });
    await settleNow();
    expect(failures).toEqual([]);
    expect(errors).toEqual([]);
    expect(sentByA.some((p) => p.rejected || p.reset)).toBe(false);
    expect(sentByB.some((p) => p.rejected || p.reset)).toBe(false);
    expect(a.trail.filter((s) => s.startsWith("answer without an offer of ours dropped"))).toHaveLength(1);
    expect(b.trail.filter((s) => s.startsWith("answer without an offer of ours dropped"))).toHaveLength(1);
  });
});

describe("PeerLink after a rebuild", () => {
  it("drops signals from the remote connection a reset replaced, and keeps the history", async () => {
    const pc = new FakePeerConnection("new");
    const sent: SignalPayload[] = [];
    const retired = { sessions: new Set(["111"]), ufrags: new Set(["oldu"]) };
    const link = new PeerLink("x", false, asPc(pc), (p) => sent.push(p), { retired });
    pc.addTransceiver("audio", { direction: "recvonly" });
    await settleNow();
    expect(pc.signalingState).toBe("have-local-offer");
    // The old remote connection's answer to our old offer, still in flight: it must not
    // be taken as the answer to the new connection's offer.
    void link.receive({ description: { type: "answer", sdp: "v=0\r\no=- 111 3 IN IP4 0.0.0.0\r\n" } });
    void link.receive({
      candidate: { candidate: "candidate:9 1 udp 1 10.0.0.9 9 typ host", usernameFragment: "oldu" },
    });
    await settleNow();
    expect(pc.signalingState).toBe("have-local-offer");
    expect(link.trail.filter((s) => s.startsWith("stale"))).toHaveLength(2);
    void link.receive({
      description: { type: "answer", sdp: "v=0\r\no=- 222 1 IN IP4 0.0.0.0\r\na=ice-ufrag:newu\r\n" },
    });
    await settleNow();
    expect(pc.signalingState).toBe("stable");
    const history = link.remoteHistory();
    expect([...history.sessions].sort()).toEqual(["111", "222"]);
    expect([...history.ufrags].sort()).toEqual(["newu", "oldu"]);
    link.close();
    expect(pc.closed).toBe(true);
  });
});
