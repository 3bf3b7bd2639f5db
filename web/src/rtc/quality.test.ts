import { afterEach, describe, expect, it, vi } from "vitest";
import { QualityPoll, qualityPoll, type QualitySource } from "../ui/hooks/quality";
import {
  QUALITY_LIMITS,
  QualityTracker,
  candidateWords,
  describeQuality,
  formatPercent,
  levelOf,
  pathOf,
  qualityDetails,
  qualityOf,
  type QualitySample,
} from "./quality";
import { readStats, type PeerStats } from "./stats";

const report = (stats: Record<string, unknown>[]) =>
  new Map(stats.map((s) => [s.id as string, s])) as unknown as RTCStatsReport;

/**
 * Shaped as Chromium reports it (fields copied from a real two-peer getStats() dump): two
 * candidate pairs of which the transport selected the second, codecs by codecId, a camera
 * and a screen in each direction.
 */
const CHROMIUM = [
  { id: "T01", timestamp: 5000, type: "transport", selectedCandidatePairId: "CP2" },
  {
    id: "CP1",
    timestamp: 5000,
    type: "candidate-pair",
    currentRoundTripTime: 0.001,
    localCandidateId: "L1",
    remoteCandidateId: "R1",
    nominated: true, // an earlier nomination: the transport's choice wins
    state: "succeeded",
  },
  {
    id: "CP2",
    timestamp: 5000,
    type: "candidate-pair",
    currentRoundTripTime: 0.042,
    localCandidateId: "L2",
    remoteCandidateId: "R2",
    nominated: true,
    state: "succeeded",
  },
  { id: "L1", timestamp: 5000, type: "local-candidate", candidateType: "host" },
  { id: "L2", timestamp: 5000, type: "local-candidate", candidateType: "srflx" },
  { id: "R1", timestamp: 5000, type: "remote-candidate", candidateType: "host" },
  { id: "R2", timestamp: 5000, type: "remote-candidate", candidateType: "relay" },
  { id: "CIT01_111", timestamp: 5000, type: "codec", mimeType: "audio/opus", payloadType: 111 },
  { id: "CIT01_96", timestamp: 5000, type: "codec", mimeType: "video/VP8", payloadType: 96 },
  { id: "CIT01_98", timestamp: 5000, type: "codec", mimeType: "video/VP9", payloadType: 98 },
  {
    id: "IT01A1",
    timestamp: 5000,
    type: "inbound-rtp",
    kind: "audio",
    codecId: "CIT01_111",
    packetsReceived: 200,
    packetsLost: 3,
    bytesReceived: 10930,
    trackIdentifier: "mic-1",
  },
  {
    id: "IT01V2",
    timestamp: 5000,
    type: "inbound-rtp",
    kind: "video",
    codecId: "CIT01_96",
    packetsReceived: 249,
    packetsLost: 1,
    bytesReceived: 228293,
    frameWidth: 640,
    frameHeight: 480,
    framesDecoded: 78,
    framesPerSecond: 20,
    trackIdentifier: "camera-1",
  },
  {
    id: "IT01V3",
    timestamp: 5000,
    type: "inbound-rtp",
    kind: "video",
    codecId: "CIT01_98",
    packetsReceived: 50,
    packetsLost: 0,
    bytesReceived: 90000,
    frameWidth: 1920,
    frameHeight: 1080,
    framesDecoded: 12,
    framesPerSecond: 5,
    trackIdentifier: "screen-1",
  },
  {
    id: "OT01A1",
    timestamp: 5000,
    type: "outbound-rtp",
    kind: "audio",
    codecId: "CIT01_111",
    bytesSent: 10930,
    mid: "0",
  },
  {
    id: "OT01V2",
    timestamp: 5000,
    type: "outbound-rtp",
    kind: "video",
    codecId: "CIT01_96",
    bytesSent: 228293,
    frameWidth: 320,
    frameHeight: 240,
    framesEncoded: 78,
    framesPerSecond: 20,
    mid: "1",
  },
  {
    id: "OT01V3",
    timestamp: 5000,
    type: "outbound-rtp",
    kind: "video",
    codecId: "CIT01_98",
    bytesSent: 5000,
    frameWidth: 1280,
    frameHeight: 720,
    framesEncoded: 9,
    framesPerSecond: 3,
    mid: "3",
  },
  // A remote report is older than the local stats: it does not date the sample.
  { id: "RIV2", timestamp: 4100, type: "remote-inbound-rtp", kind: "video", roundTripTime: 0.5 },
];

describe("readStats", () => {
  const read = readStats(report(CHROMIUM), { inboundTrackId: "screen-1", outboundMid: "3" });

  it("takes the round trip and candidate types from the pair the transport selected", () => {
    expect(read.currentRoundTripTime).toBe(0.042);
    expect(read.localCandidateType).toBe("srflx");
    expect(read.remoteCandidateType).toBe("relay");
  });

  it("follows codecId to the codec's mimeType, per direction and stream", () => {
    expect(read.cameraIn?.mimeType).toBe("video/VP8");
    expect(read.screenIn?.mimeType).toBe("video/VP9");
    expect(read.audioCodecIn).toBe("audio/opus");
    expect(read.audioCodecOut).toBe("audio/opus");
  });

  it("tells the screen from the camera: inbound by track id, outbound by mid", () => {
    expect(read.cameraIn).toMatchObject({
      frameWidth: 640,
      frameHeight: 480,
      frames: 78,
      framesPerSecond: 20,
    });
    expect(read.screenIn).toMatchObject({ frameWidth: 1920, frameHeight: 1080, frames: 12 });
    expect(read.cameraOut).toMatchObject({ frameWidth: 320, frameHeight: 240, frames: 78 });
    expect(read.screenOut).toMatchObject({ frameWidth: 1280, frameHeight: 720, frames: 9 });
    expect(read.videoFramesDecoded).toBe(78);
    expect(read.screenFramesDecoded).toBe(12);
  });

  it("adds up packets over audio and video, bytes per kind, and dates the sample by local stats", () => {
    expect(read.packetsReceived).toBe(200 + 249 + 50);
    expect(read.packetsLost).toBe(3 + 1);
    expect(read.videoBytesReceived).toBe(228293 + 90000);
    expect(read.audioBytesReceived).toBe(10930);
    expect(read.videoBytesSent).toBe(228293 + 5000);
    expect(read.timestamp).toBe(5000);
  });

  it("counts every video stream as the camera when no screen is known", () => {
    const noScreen = readStats(report(CHROMIUM), { inboundTrackId: null, outboundMid: null });
    expect(noScreen.screenIn).toBeNull();
    expect(noScreen.screenOut).toBeNull();
    expect(noScreen.videoFramesDecoded).toBe(78 + 12);
    // Size and codec come from the stream that flows fastest: the camera at 20 frames/s.
    expect(noScreen.cameraIn).toMatchObject({ frameWidth: 640, mimeType: "video/VP8" });
  });

  it("adds up a simulcast camera's layers, and takes its size from the top one", () => {
    const layer = (rid: string, frameWidth: number, bytesSent: number) => ({
      id: `OV-${rid}`,
      type: "outbound-rtp",
      kind: "video",
      mid: "1",
      rid,
      frameWidth,
      frameHeight: (frameWidth * 3) / 4,
      framesEncoded: 30,
      framesPerSecond: 30,
      bytesSent,
    });
    const sent = readStats(report([layer("l", 160, 100), layer("h", 640, 900), layer("m", 320, 300)]), {
      inboundTrackId: null,
      outboundMid: null,
    });
    expect(sent.cameraOut).toMatchObject({ frameWidth: 640, frameHeight: 480, frames: 90, bytes: 1300 });
    expect(sent.videoBytesSent).toBe(1300);
  });

  it("reports nothing it was not given", () => {
    const empty = readStats(report([]), { inboundTrackId: null, outboundMid: null });
    expect(empty).toMatchObject({
      currentRoundTripTime: null,
      cameraIn: null,
      audioCodecIn: null,
      timestamp: 0,
    });
  });
});

/** A sample one second after `base` unless told otherwise. */
function sample(patch: Partial<QualitySample> = {}): QualitySample {
  return {
    timestamp: 1000,
    connection: "connected",
    rebuilds: 0,
    currentRoundTripTime: 0.012,
    packetsReceived: 0,
    packetsLost: 0,
    audioBytesReceived: 0,
    videoBytesReceived: 0,
    audioBytesSent: 0,
    videoBytesSent: 0,
    cameraIn: null,
    screenIn: null,
    cameraOut: null,
    screenOut: null,
    audioCodecIn: null,
    audioCodecOut: null,
    localCandidateType: "host",
    remoteCandidateType: "host",
    ...patch,
  };
}

const camera = (frames: number, framesPerSecond: number | null = 30) => ({
  frameWidth: 640,
  frameHeight: 360,
  framesPerSecond,
  frames,
  bytes: 0,
  mimeType: "video/VP8",
});

describe("qualityOf", () => {
  it("computes loss over the last interval, not since the start", () => {
    const before = sample({ packetsReceived: 990, packetsLost: 10 });
    const now = sample({ timestamp: 2000, packetsReceived: 1080, packetsLost: 20 });
    // 10 lost of 100 expected in the interval; since the start it would be 20/1100 = 1.8 %.
    expect(qualityOf(now, before).lossPercent).toBeCloseTo(10);
    expect(qualityOf(now, null).lossPercent).toBeCloseTo((20 / 1100) * 100);
  });

  it("never reports negative loss when late packets lower packetsLost", () => {
    const before = sample({ packetsReceived: 100, packetsLost: 5 });
    const now = sample({ timestamp: 2000, packetsReceived: 200, packetsLost: 3 });
    expect(qualityOf(now, before).lossPercent).toBe(0);
    expect(qualityOf(sample({ timestamp: 2000 }), sample()).lossPercent).toBeNull();
  });

  it("turns byte deltas over the elapsed time into kbit/s per kind and direction", () => {
    const before = sample({ timestamp: 1000, videoBytesReceived: 1000, audioBytesSent: 500 });
    const now = sample({
      timestamp: 3000, // two seconds
      videoBytesReceived: 1000 + 250_000,
      audioBytesReceived: 8_000,
      audioBytesSent: 500 + 10_000,
    });
    const q = qualityOf(now, before);
    expect(q.bitrateIn.video).toBeCloseTo(1000); // 250 kB × 8 / 2 s = 1000 kbit/s
    expect(q.bitrateIn.audio).toBeCloseTo(32);
    expect(q.bitrateOut.audio).toBeCloseTo(40);
    expect(q.bitrateOut.video).toBe(0);
    expect(qualityOf(now, null).bitrateIn).toEqual({ audio: null, video: null });
  });

  it("ignores a previous sample from a rebuilt connection or with counters that went back", () => {
    const before = sample({ packetsReceived: 1000, packetsLost: 0, videoBytesReceived: 9_000_000 });
    // The new connection counted more already: only the rebuild count tells them apart.
    const rebuilt = sample({
      timestamp: 2000,
      rebuilds: 1,
      packetsReceived: 1100,
      packetsLost: 10,
      videoBytesReceived: 9_500_000,
    });
    expect(qualityOf(rebuilt, before).bitrateIn.video).toBeNull();
    expect(qualityOf(rebuilt, before).lossPercent).toBeCloseTo((10 / 1110) * 100);
    const reset = sample({ timestamp: 2000, packetsReceived: 100, packetsLost: 10, videoBytesReceived: 5 });
    expect(qualityOf(reset, before).bitrateIn.video).toBeNull();
    expect(qualityOf(sample({ timestamp: 1000 }), sample({ timestamp: 1000 })).bitrateIn.video).toBeNull();
  });

  it("converts the round trip to ms and reads the path from the candidate types", () => {
    const q = qualityOf(sample({ currentRoundTripTime: 0.25, localCandidateType: "relay" }), null);
    expect(q.roundTripMs).toBeCloseTo(250);
    expect(q.path).toBe("relayed");
  });

  it("shows a camera only while its frames move, with the browser's frame rate or a measured one", () => {
    const before = sample({ cameraIn: camera(100) });
    const moving = qualityOf(sample({ timestamp: 2000, cameraIn: camera(130) }), before);
    expect(moving.cameraIn).toEqual({ width: 640, height: 360, framesPerSecond: 30, codec: "VP8" });
    expect(moving.framesPerSecond).toBe(30);
    const stalled = qualityOf(sample({ timestamp: 2000, cameraIn: camera(100) }), before);
    expect(stalled.cameraIn).toBeNull();
    expect(stalled.framesPerSecond).toBeNull();
    const measured = qualityOf(sample({ timestamp: 3000, cameraIn: camera(150, null) }), before);
    expect(measured.framesPerSecond).toBeCloseTo(25); // 50 frames in 2 s
    expect(qualityOf(sample({ cameraIn: camera(0) }), null).cameraIn).toBeNull();
  });
});

describe("levelOf", () => {
  const at = (roundTripMs: number | null, lossPercent: number | null, framesPerSecond: number | null = 30) =>
    levelOf({ connection: "connected", roundTripMs, lossPercent, framesPerSecond });

  it("is poor over 300 ms round trip or 5 % loss", () => {
    expect(at(301, 0)).toBe("poor");
    expect(at(20, 5.1)).toBe("poor");
    expect(at(300, 0)).toBe("fair");
    expect(at(20, 5)).toBe("fair");
  });

  it("is fair over 150 ms, over 2 % loss or a camera under 12 frames/s", () => {
    expect(at(151, 0)).toBe("fair");
    expect(at(20, 2.1)).toBe("fair");
    expect(at(20, 0, 11)).toBe("fair");
    expect(at(150, 2, 12)).toBe("good");
    expect(at(20, 0, null)).toBe("good"); // no camera: frame rate does not count
  });

  it("judges with what is known, and is unknown with nothing or before connecting", () => {
    expect(at(null, 6)).toBe("poor");
    expect(at(400, null)).toBe("poor");
    expect(at(null, null)).toBe("unknown");
    const base = { roundTripMs: 10, lossPercent: 0, framesPerSecond: 30 };
    expect(levelOf({ ...base, connection: "connecting" })).toBe("unknown");
    expect(levelOf({ ...base, connection: "disconnected" })).toBe("poor");
    expect(levelOf({ ...base, connection: "failed" })).toBe("poor");
  });

  it("uses the limits it is given", () => {
    const strict = { ...QUALITY_LIMITS, poorRoundTripMs: 50 };
    expect(
      levelOf({ connection: "connected", roundTripMs: 60, lossPercent: 0, framesPerSecond: null }, strict),
    ).toBe("poor");
  });
});

describe("pathOf", () => {
  it("is relayed when either end is a relay candidate, direct otherwise", () => {
    expect(pathOf("relay", "host")).toBe("relayed");
    expect(pathOf("host", "relay")).toBe("relayed");
    expect(pathOf("relay", null)).toBe("relayed");
    expect(pathOf("srflx", "prflx")).toBe("direct");
    expect(pathOf("host", "host")).toBe("direct");
    expect(pathOf(null, "host")).toBe("unknown");
  });
});

describe("QualityTracker", () => {
  it("keeps the previous sample per member and forgets members who left", () => {
    const tracker = new QualityTracker();
    tracker.update({ a: sample({ videoBytesReceived: 0 }), b: sample({ videoBytesReceived: 0 }) });
    const second = tracker.update({ a: sample({ timestamp: 2000, videoBytesReceived: 125_000 }) });
    expect(second.get("a")?.bitrateIn.video).toBeCloseTo(1000);
    expect(second.has("b")).toBe(false);
    // b comes back: no deltas against the sample from before it left.
    const third = tracker.update({ b: sample({ timestamp: 3000, videoBytesReceived: 500_000 }) });
    expect(third.get("b")?.bitrateIn.video).toBeNull();
  });
});

describe("words", () => {
  it("says the level and the numbers behind it", () => {
    const q = qualityOf(
      sample({ currentRoundTripTime: 0.012, packetsReceived: 500, cameraIn: camera(30) }),
      null,
    );
    expect(describeQuality(q)).toBe("Connection good: 12 ms round trip, 0% loss, 30 frames/s, direct");
    expect(describeQuality(undefined)).toBe("Connection quality not known yet");
    const relayed = qualityOf(
      sample({
        currentRoundTripTime: 0.4,
        remoteCandidateType: "relay",
        packetsReceived: 97,
        packetsLost: 3,
      }),
      null,
    );
    expect(describeQuality(relayed)).toBe("Connection poor: 400 ms round trip, 3% loss, relayed");
    expect(qualityDetails(relayed).split("\n")).toContain("Path: relayed through a server");
  });

  it("shows loss to one decimal below 10 % and candidate types in words", () => {
    expect(formatPercent(0)).toBe("0%");
    expect(formatPercent(0.43)).toBe("0.4%");
    expect(formatPercent(12.6)).toBe("13%");
    expect(candidateWords("srflx")).toBe("Public address through a router (srflx)");
    expect(candidateWords("mystery")).toBe("mystery");
    expect(candidateWords(null)).toBeNull();
  });
});

describe("QualityPoll", () => {
  afterEach(() => vi.useRealTimers());

  const source = () => {
    let bytes = 0;
    const stats = vi.fn(async () => {
      bytes += 125_000;
      return { a: sample({ timestamp: bytes / 125, videoBytesReceived: bytes }) as PeerStats };
    });
    return { stats, source: { mediaStats: stats } satisfies QualitySource };
  };

  it("shares one getStats round per interval among its listeners, and stops with the last", async () => {
    vi.useFakeTimers();
    const { stats, source: s } = source();
    const poll = qualityPoll(s, 1000);
    expect(qualityPoll(s, 1000)).toBe(poll);
    const first = vi.fn();
    const offFirst = poll.subscribe(first);
    const offSecond = poll.subscribe(vi.fn());
    await vi.advanceTimersByTimeAsync(0);
    expect(stats).toHaveBeenCalledTimes(1); // at once, for both
    await vi.advanceTimersByTimeAsync(1000);
    expect(stats).toHaveBeenCalledTimes(2);
    expect(poll.snapshot.get("a")?.bitrateIn.video).toBeCloseTo(1000);
    expect(first).toHaveBeenCalledTimes(2);
    offFirst();
    await vi.advanceTimersByTimeAsync(1000);
    expect(stats).toHaveBeenCalledTimes(3);
    offSecond();
    await vi.advanceTimersByTimeAsync(5000);
    expect(stats).toHaveBeenCalledTimes(3);
  });

  it("skips a round while the previous getStats is still out", async () => {
    vi.useFakeTimers();
    let release = () => {};
    const stats = vi.fn(
      () =>
        new Promise<Record<string, PeerStats>>((resolve) => {
          release = () => resolve({});
        }),
    );
    const poll = new QualityPoll({ mediaStats: stats }, 1000);
    const off = poll.subscribe(() => {});
    await vi.advanceTimersByTimeAsync(3000);
    expect(stats).toHaveBeenCalledTimes(1);
    release();
    await vi.advanceTimersByTimeAsync(1000);
    expect(stats).toHaveBeenCalledTimes(2);
    off();
  });
});
