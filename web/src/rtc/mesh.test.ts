import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakePeerConnection, settle } from "../test/fakes";
import { Mesh, selectedPairTypes } from "./mesh";
import type { SignalPayload } from "./peer";

class FakeStream {
  constructor(readonly tracks: unknown[] = []) {}
}

const track = (kind: string, id = kind) => ({ kind, id }) as unknown as MediaStreamTrack;

function mesh() {
  const made: FakePeerConnection[] = [];
  const sent: { to: string; payload: SignalPayload }[] = [];
  const m = new Mesh(
    (to, payload) => sent.push({ to, payload }),
    {},
    () => {
      const pc = new FakePeerConnection(`pc${made.length}`);
      made.push(pc);
      return pc as unknown as RTCPeerConnection;
    },
    () => new FakeStream() as unknown as MediaStream,
  );
  return { m, made, sent };
}

beforeEach(() => {
  (globalThis as { MediaStream?: unknown }).MediaStream = FakeStream;
});
afterEach(() => {
  delete (globalThis as { MediaStream?: unknown }).MediaStream;
});

describe("Mesh", () => {
  it("makes one connection per member and closes it when the member leaves", () => {
    const { m, made } = mesh();
    m.add("b", false);
    m.add("c", true);
    m.add("b", false); // the same member twice is one connection
    expect(made).toHaveLength(2);
    expect(m.remote.map((p) => [p.id, p.polite])).toEqual([
      ["b", false],
      ["c", true],
    ]);
    m.remove("b");
    expect(made[0]?.closed).toBe(true);
    expect(m.remote.map((p) => p.id)).toEqual(["c"]);
  });

  it("sends local tracks to new members and switches devices with replaceTrack", async () => {
    const { m, made } = mesh();
    m.setTrack("audio", track("audio", "mic1"));
    m.setTrack("video", track("video", "cam1"));
    m.add("b", false);
    const pc = made[0]!;
    expect(pc.transceivers.map((t) => (t.sender.track as MediaStreamTrack).id)).toEqual(["mic1", "cam1"]);
    m.setTrack("video", track("video", "cam2"));
    await settle();
    expect(pc.transceivers).toHaveLength(2); // replaced, not added
    expect((pc.transceivers[1]?.sender.track as MediaStreamTrack).id).toBe("cam2");
  });

  it("the impolite side asks to receive audio and video even with nothing to send", () => {
    const { m, made } = mesh();
    m.add("b", false);
    expect(made[0]?.transceivers.map((t) => t.direction)).toEqual(["recvonly", "recvonly"]);
    m.setTrack("audio", track("audio"));
    expect(made[0]?.transceivers[0]?.direction).toBe("sendrecv");
  });

  it("a screen share adds a sender (renegotiation) and stopping it removes that sender", () => {
    const { m, made } = mesh();
    m.setTrack("video", track("video", "cam"));
    m.add("b", true);
    const pc = made[0]!;
    m.setTrack("screen", track("video", "screen"));
    expect(pc.transceivers).toHaveLength(2);
    const screenSender = pc.transceivers[1]!.sender;
    m.setTrack("screen", null);
    expect(screenSender.track).toBeNull();
  });

  it("tells a remote screen (a track without a stream) from the camera", () => {
    const { m, made } = mesh();
    m.add("b", false);
    const pc = made[0]!;
    const camera = new FakeStream();
    pc.ontrack?.({ track: track("video", "cam"), streams: [camera] });
    pc.ontrack?.({ track: track("video", "scr"), streams: [] });
    const [peer] = m.remote;
    expect(peer?.camera).toBe(camera);
    expect(peer?.screen).toBeInstanceOf(FakeStream);
    expect(peer?.screen).not.toBe(camera);
  });

  it("relays signals to the right member and ignores unknown senders", async () => {
    const { m, made, sent } = mesh();
    m.add("b", true);
    await m.receive("b", { description: { type: "offer", sdp: "x" } });
    await settle();
    expect(made[0]?.remoteDescription?.sdp).toBe("x");
    expect(sent.some((s) => s.to === "b" && s.payload.description?.type === "answer")).toBe(true);
    await expect(m.receive("nobody", { description: { type: "offer", sdp: "y" } })).resolves.toBeUndefined();
  });
});

describe("selectedPairTypes", () => {
  const report = (stats: Record<string, unknown>[]) =>
    new Map(stats.map((s) => [s.id as string, s])) as unknown as RTCStatsReport;

  it("follows the transport's selected pair to the candidates' types", () => {
    expect(
      selectedPairTypes(
        report([
          { id: "T1", type: "transport", selectedCandidatePairId: "P2" },
          { id: "P1", type: "candidate-pair", localCandidateId: "L1", remoteCandidateId: "R1" },
          { id: "P2", type: "candidate-pair", localCandidateId: "L2", remoteCandidateId: "R2" },
          { id: "L1", type: "local-candidate", candidateType: "host" },
          { id: "L2", type: "local-candidate", candidateType: "relay" },
          { id: "R1", type: "remote-candidate", candidateType: "host" },
          { id: "R2", type: "remote-candidate", candidateType: "relay" },
        ]),
      ),
    ).toEqual({ localCandidateType: "relay", remoteCandidateType: "relay" });
  });

  it("falls back to a nominated pair that succeeded, and to null without one", () => {
    const nominated = [
      {
        id: "P1",
        type: "candidate-pair",
        nominated: true,
        state: "succeeded",
        localCandidateId: "L1",
        remoteCandidateId: "R1",
      },
      { id: "L1", type: "local-candidate", candidateType: "srflx" },
      { id: "R1", type: "remote-candidate", candidateType: "host" },
    ];
    expect(selectedPairTypes(report(nominated))).toEqual({
      localCandidateType: "srflx",
      remoteCandidateType: "host",
    });
    expect(selectedPairTypes(report([]))).toEqual({ localCandidateType: null, remoteCandidateType: null });
  });
});
