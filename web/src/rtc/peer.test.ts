import { describe, expect, it } from "vitest";
import { FakePeerConnection, asPc, settle } from "../test/fakes";
import { PeerLink, type SignalPayload } from "./peer";

/** Two PeerLinks wired through an in-order "server" that can be paused. */
function pair(firstOfferWaitMs = 1500) {
  const pcA = new FakePeerConnection("a");
  const pcB = new FakePeerConnection("b");
  const toA: SignalPayload[] = [];
  const toB: SignalPayload[] = [];
  let held = false;
  const errors: unknown[] = [];
  const flush = () => {
    if (held) return;
    while (toA.length) void a.receive(toA.shift()!);
    while (toB.length) void b.receive(toB.shift()!);
  };
  // a is impolite (it was in the room first), b is polite (the joiner), as the server says.
  const a: PeerLink = new PeerLink(
    "b",
    false,
    asPc(pcA),
    (p) => (toB.push(p), setTimeout(flush, 0)),
    (e) => errors.push(e),
  );
  const b: PeerLink = new PeerLink(
    "a",
    true,
    asPc(pcB),
    (p) => (toA.push(p), setTimeout(flush, 0)),
    (e) => errors.push(e),
    firstOfferWaitMs,
  );
  return {
    a,
    b,
    pcA,
    pcB,
    errors,
    toA,
    toB,
    hold: () => (held = true),
    release: () => {
      held = false;
      flush();
    },
  };
}

describe("PeerLink perfect negotiation", () => {
  it("the impolite side offers first and the polite side answers", async () => {
    const { pcA, pcB, errors, b } = pair();
    pcA.addTrack("micA");
    pcB.addTrack("micB"); // the polite side waits for the offer instead of offering too
    await settle();
    expect(pcA.signalingState).toBe("stable");
    expect(pcB.signalingState).toBe("stable");
    expect(pcA.remoteDescription?.type).toBe("answer");
    expect(pcB.remoteDescription?.type).toBe("offer");
    expect(b.trail.some((s) => s.startsWith("send offer"))).toBe(false);
    expect(errors).toEqual([]);
  });

  it("glare: both sides offer at once; the impolite offer wins, the polite one rolls back", async () => {
    const { a, b, pcA, pcB, errors, hold, release } = pair(0);
    await settle();
    hold(); // both offers cross on the wire
    pcA.addTrack("camA");
    pcB.addTrack("camB");
    await settle();
    expect(pcA.signalingState).toBe("have-local-offer");
    expect(pcB.signalingState).toBe("have-local-offer");
    const offerFromA = pcA.localDescription?.sdp;
    release();
    await settle();
    expect(pcA.signalingState).toBe("stable");
    expect(pcB.signalingState).toBe("stable");
    expect(pcB.remoteDescription?.sdp).toBe(offerFromA); // b took a's offer after rolling back
    expect(a.trail).toContain("remote offer (collision) [have-local-offer]");
    expect(b.trail).toContain("remote offer (collision) [have-local-offer]");
    expect(errors).toEqual([]);
    // b still wants its own track negotiated: it offers again once stable.
    pcB.needNegotiation();
    await settle();
    expect(pcA.remoteDescription?.type).toBe("offer");
    expect(pcB.remoteDescription?.type).toBe("answer");
    expect(pcA.signalingState).toBe("stable");
  });

  it("holds candidates that arrive before the remote description, then applies them", async () => {
    const pc = new FakePeerConnection("p");
    const sent: SignalPayload[] = [];
    const link = new PeerLink("x", true, asPc(pc), (p) => sent.push(p));
    const candidate = { candidate: "candidate:1 1 udp 1 10.0.0.1 9 typ host", sdpMid: "0", sdpMLineIndex: 0 };
    await link.receive({ candidate });
    expect(pc.candidates).toEqual([]);
    await link.receive({ description: { type: "offer", sdp: "remote-offer" } });
    expect(pc.candidates).toEqual([expect.objectContaining({ candidate: candidate.candidate })]);
    expect(sent.some((p) => p.description?.type === "answer")).toBe(true);
    link.close();
  });

  it("restarts ICE when the connection fails", () => {
    const pc = new FakePeerConnection("p");
    const link = new PeerLink("x", false, asPc(pc), () => {});
    pc.iceConnectionState = "failed";
    pc.oniceconnectionstatechange?.();
    expect(pc.restarts).toBe(1);
    link.close();
    expect(pc.closed).toBe(true);
  });

  it("the polite side offers itself when no offer comes", async () => {
    const pc = new FakePeerConnection("p");
    const sent: SignalPayload[] = [];
    const link = new PeerLink(
      "x",
      true,
      asPc(pc),
      (p) => sent.push(p),
      () => {},
      150,
    );
    pc.addTrack("mic");
    await settle(5);
    expect(sent.some((p) => p.description?.type === "offer")).toBe(false);
    await new Promise((r) => setTimeout(r, 200));
    await settle();
    expect(sent.some((p) => p.description?.type === "offer")).toBe(true);
    link.close();
  });

  it("trickles its own candidates to the other side", async () => {
    const { pcA, toB, hold } = pair();
    hold();
    pcA.addTrack("mic");
    await settle();
    expect(toB.some((p) => p.candidate?.candidate.startsWith("candidate:a"))).toBe(true);
  });
});
