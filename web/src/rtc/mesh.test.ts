import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakePeerConnection, settleNow } from "../test/fakes";
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
    { streamFactory: () => new FakeStream() as unknown as MediaStream },
  );
  return { m, made, sent };
}

beforeEach(() => {
  vi.useFakeTimers();
  (globalThis as { MediaStream?: unknown }).MediaStream = FakeStream;
});
afterEach(() => {
  vi.useRealTimers();
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
    await settleNow();
    expect(pc.transceivers).toHaveLength(2); // replaced, not added
    expect((pc.transceivers[1]?.sender.track as MediaStreamTrack).id).toBe("cam2");
  });

  it("a muted microphone or a camera turned off sends nothing: its encoding is not active", async () => {
    const { m, made } = mesh();
    m.setTrack("audio", track("audio", "mic1"));
    m.setTrack("video", track("video", "cam1"));
    m.add("b", false);
    const pc = made[0]!;
    const [audio, video] = pc.transceivers.map((t) => t.sender);
    m.setSending("audio", false);
    await settleNow();
    expect(audio?.encodings[0]?.active).toBe(false);
    expect(video?.encodings[0]?.active).toBe(true);
    m.setSending("audio", true);
    m.setSending("video", false);
    await settleNow();
    expect(audio?.encodings[0]?.active).toBe(true);
    expect(video?.encodings[0]?.active).toBe(false);
    m.add("c", false); // a member added while the camera is off gets it off once connected
    const later = made[1]!;
    later.setConnectionState("connected");
    await settleNow();
    expect(later.transceivers[1]?.sender.encodings[0]?.active).toBe(false);
  });

  it("the impolite side asks to receive audio and video even with nothing to send", () => {
    const { m, made } = mesh();
    m.add("b", false);
    expect(made[0]?.transceivers.map((t) => t.direction)).toEqual(["recvonly", "recvonly"]);
    m.setTrack("audio", track("audio"));
    expect(made[0]?.transceivers[0]?.direction).toBe("sendrecv");
  });

  it("a screen share renegotiates on one transceiver, however often it starts and stops", async () => {
    const { m, made } = mesh();
    m.setTrack("video", track("video", "cam"));
    m.add("b", true);
    const pc = made[0]!;
    const negotiations = vi.fn();
    await settleNow();
    pc.onnegotiationneeded = negotiations;
    m.setTrack("screen", track("video", "screen1"));
    expect(pc.transceivers).toHaveLength(2);
    const screen = pc.transceivers[1]!;
    expect([screen.direction, (screen.sender.track as MediaStreamTrack).id]).toEqual(["sendrecv", "screen1"]);
    m.setTrack("screen", null);
    expect([screen.direction, screen.sender.track]).toEqual(["recvonly", null]);
    m.setTrack("screen", track("video", "screen2"));
    await settleNow();
    expect(pc.transceivers).toHaveLength(2); // the same transceiver, not a new m-line
    expect([screen.direction, (screen.sender.track as MediaStreamTrack).id]).toEqual(["sendrecv", "screen2"]);
    m.setTrack("screen", track("video", "window3")); // another window: no renegotiation
    await settleNow();
    expect((screen.sender.track as MediaStreamTrack).id).toBe("window3");
    expect(negotiations).toHaveBeenCalled();
    const before = negotiations.mock.calls.length;
    m.setTrack("screen", track("video", "window4"));
    await settleNow();
    expect(negotiations.mock.calls.length).toBe(before);
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
    void m.receive("b", { description: { type: "offer", sdp: "x" } });
    await settleNow();
    expect(made[0]?.remoteDescription?.sdp).toBe("x");
    expect(sent.some((s) => s.to === "b" && s.payload.description?.type === "answer")).toBe(true);
    await expect(m.receive("nobody", { description: { type: "offer", sdp: "y" } })).resolves.toBeUndefined();
  });

  it("keeps signals from a member not added yet, and hands them over when it is", async () => {
    const { m, made, sent } = mesh();
    void m.receive("b", { description: { type: "offer", sdp: "early" } }); // overtook member_joined
    void m.receive("c", { description: { type: "offer", sdp: "stale" } });
    await vi.advanceTimersByTimeAsync(10_001);
    m.add("c", true); // what c sent is too old to mean anything now
    await settleNow();
    expect(made[0]?.remoteDescription).toBeNull();
    void m.receive("b", { description: { type: "offer", sdp: "early" } });
    m.add("b", true);
    await settleNow();
    expect(made[1]?.remoteDescription?.sdp).toBe("early");
    expect(sent.some((s) => s.to === "b" && s.payload.description?.type === "answer")).toBe(true);
    expect(m.remote.map((p) => [p.id, p.recovery])).toEqual([
      ["c", null],
      ["b", null],
    ]);
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
