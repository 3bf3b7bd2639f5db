/**
 * What `getStats()` says about one member's connection, boiled down to the numbers that
 * prove media flows (tests read them), the raw counters the quality figures are computed
 * from (src/rtc/quality.ts), and a few for diagnostics.
 *
 * Names follow W3C webrtc-stats (https://www.w3.org/TR/webrtc-stats/); each field says which
 * dictionary it is read from. Counters are cumulative, as the browser reports them: rates and
 * loss over the last second are the difference between two samples (quality.ts).
 */

/** One video stream (a camera or a screen share, one direction) as the browser last saw it. */
export interface VideoFlow {
  /** `frameWidth` × `frameHeight` of the last decoded (inbound) or encoded (outbound) frame. */
  frameWidth: number | null;
  frameHeight: number | null;
  /** `framesPerSecond`, measured by the browser over the last second; null when not reported. */
  framesPerSecond: number | null;
  /** `framesDecoded` (RTCInboundRtpStreamStats) or `framesEncoded` (RTCOutboundRtpStreamStats). */
  frames: number;
  /** `bytesReceived` (inbound) or `bytesSent` (outbound), payload only. */
  bytes: number;
  /** RTCCodecStats `mimeType` ("video/VP8") of the stream's `codecId`. */
  mimeType: string | null;
}

export interface PeerStats {
  videoFramesDecoded: number;
  screenFramesDecoded: number;
  audioBytesReceived: number;
  /** Outbound payload bytes toward this member (webrtc-stats `outbound-rtp.bytesSent`). */
  audioBytesSent: number;
  videoBytesSent: number;
  connection: RTCPeerConnectionState;
  signaling: RTCSignalingState;
  trail: string[];
  /** The candidate types of the selected pair ("host", "srflx", "prflx", "relay"), if any. */
  localCandidateType: string | null;
  remoteCandidateType: string | null;
  /** ICE restarts made toward this member, and connections rebuilt, since it was added. */
  iceRestarts: number;
  rebuilds: number;
  /** When the report was taken: the newest RTCStats `timestamp` in it (ms). */
  timestamp: number;
  /** RTCIceCandidatePairStats `currentRoundTripTime` of the selected pair, in seconds. */
  currentRoundTripTime: number | null;
  /** RTCInboundRtpStreamStats `packetsReceived` and `packetsLost`, summed over audio and video. */
  packetsReceived: number;
  packetsLost: number;
  /** RTCInboundRtpStreamStats `bytesReceived` of the video streams (camera and screen). */
  videoBytesReceived: number;
  /** The camera and the screen share received from this member, and sent to it. */
  cameraIn: VideoFlow | null;
  screenIn: VideoFlow | null;
  cameraOut: VideoFlow | null;
  screenOut: VideoFlow | null;
  /** RTCCodecStats `mimeType` ("audio/opus") of the audio received and sent. */
  audioCodecIn: string | null;
  audioCodecOut: string | null;
}

/** How the screen share is told from the camera: the receiver's track id, the sender's `mid`. */
export interface ScreenIds {
  /** `trackIdentifier` of the screen track received from this member. */
  inboundTrackId: string | null;
  /** `mid` of the transceiver that sends this side's screen share to this member. */
  outboundMid: string | null;
}

/** One entry of an RTCStatsReport, read field by field. */
export type Stat = Record<string, unknown>;

/** The numbers for one connection: one `getStats()` call. */
export async function peerStats(
  pc: RTCPeerConnection,
  screen: ScreenIds,
  extra: Pick<PeerStats, "trail" | "iceRestarts" | "rebuilds">,
): Promise<PeerStats> {
  const report = await pc.getStats();
  return {
    ...readStats(report, screen),
    connection: pc.connectionState,
    signaling: pc.signalingState,
    ...extra,
  };
}

/** What `readStats` reads from one report: everything but the connection's state. */
export type ReportStats = Omit<PeerStats, "connection" | "signaling" | "trail" | "iceRestarts" | "rebuilds">;

/**
 * The report's numbers, without the connection's state: pure, so tests feed it a report.
 * `inbound` says which `inbound-rtp` entries count: all of them for a connection to one
 * member; one member's for the connection that receives everyone from an SFU (sfu.ts).
 */
export function readStats(
  report: RTCStatsReport,
  screen: ScreenIds,
  inbound: (stat: Stat) => boolean = () => true,
): ReportStats {
  const stats = indexStats(report);
  const all = [...stats.values()];
  const mimeOf = (stat: Stat): string | null => {
    const codec = stat.codecId === undefined ? undefined : stats.get(String(stat.codecId));
    return typeof codec?.mimeType === "string" ? codec.mimeType : null;
  };
  const received = all.filter((s) => s.type === "inbound-rtp" && inbound(s));
  const outbound = all.filter((s) => s.type === "outbound-rtp");
  const isScreenIn = (s: Stat) =>
    screen.inboundTrackId !== null && s.trackIdentifier === screen.inboundTrackId;
  const isScreenOut = (s: Stat) => screen.outboundMid !== null && s.mid === screen.outboundMid;
  const videoIn = received.filter((s) => s.kind === "video");
  const videoOut = outbound.filter((s) => s.kind === "video");
  const audioIn = received.filter((s) => s.kind === "audio");
  const audioOut = outbound.filter((s) => s.kind === "audio");
  const cameraIn = flowOf(
    videoIn.filter((s) => !isScreenIn(s)),
    "in",
    mimeOf,
  );
  const screenIn = flowOf(videoIn.filter(isScreenIn), "in", mimeOf);
  const pair = selectedPair(stats);
  return {
    videoFramesDecoded: cameraIn?.frames ?? 0,
    screenFramesDecoded: screenIn?.frames ?? 0,
    audioBytesReceived: sum(audioIn, "bytesReceived"),
    audioBytesSent: sum(audioOut, "bytesSent"),
    videoBytesSent: sum(videoOut, "bytesSent"),
    ...candidateTypes(stats, pair),
    timestamp: Math.max(0, ...all.map((s) => numberOr(s.timestamp, 0))),
    currentRoundTripTime: numberOr(pair?.currentRoundTripTime, null),
    packetsReceived: sum(received, "packetsReceived"),
    packetsLost: sum(received, "packetsLost"),
    videoBytesReceived: sum(videoIn, "bytesReceived"),
    cameraIn,
    screenIn,
    cameraOut: flowOf(
      videoOut.filter((s) => !isScreenOut(s)),
      "out",
      mimeOf,
    ),
    screenOut: flowOf(videoOut.filter(isScreenOut), "out", mimeOf),
    audioCodecIn: firstMime(audioIn, mimeOf),
    audioCodecOut: firstMime(audioOut, mimeOf),
  };
}

/**
 * The candidate types of the pair ICE selected: the transport's `selectedCandidatePairId`
 * (webrtc-stats 8.13), else a nominated pair that succeeded.
 */
export function selectedPairTypes(report: RTCStatsReport): {
  localCandidateType: string | null;
  remoteCandidateType: string | null;
} {
  const stats = indexStats(report);
  return candidateTypes(stats, selectedPair(stats));
}

function indexStats(report: RTCStatsReport): Map<string, Stat> {
  const stats = new Map<string, Stat>();
  report.forEach((stat: Stat) => stats.set(String(stat.id), stat));
  return stats;
}

/** RTCTransportStats `selectedCandidatePairId` (8.13), else a nominated, succeeded pair (8.17). */
function selectedPair(stats: ReadonlyMap<string, Stat>): Stat | undefined {
  const all = [...stats.values()];
  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  return (
    (transport && stats.get(String(transport.selectedCandidatePairId))) ??
    all.find((s) => s.type === "candidate-pair" && s.nominated === true && s.state === "succeeded")
  );
}

/** RTCIceCandidateStats `candidateType` (8.16) of the pair's local and remote candidates. */
function candidateTypes(
  stats: ReadonlyMap<string, Stat>,
  pair: Stat | undefined,
): { localCandidateType: string | null; remoteCandidateType: string | null } {
  const typeOf = (id: unknown) => {
    const candidate = id === undefined ? undefined : stats.get(String(id));
    return typeof candidate?.candidateType === "string" ? candidate.candidateType : null;
  };
  return {
    localCandidateType: typeOf(pair?.localCandidateId),
    remoteCandidateType: typeOf(pair?.remoteCandidateId),
  };
}

/**
 * One flow from its RTP stream entries (usually one; a renegotiation can leave an old one,
 * and a simulcast camera sends one per layer). Counters add up; size, frame rate and codec
 * come from the stream with the highest frame rate, which is the one still flowing, and of
 * equals from the largest picture (a simulcast camera's top layer).
 */
function flowOf(
  entries: Stat[],
  direction: "in" | "out",
  mimeOf: (s: Stat) => string | null,
): VideoFlow | null {
  if (entries.length === 0) return null;
  const fps = (s: Stat) => numberOr(s.framesPerSecond, -1);
  const pixels = (s: Stat) => numberOr(s.frameWidth, 0) * numberOr(s.frameHeight, 0);
  const better = (s: Stat, best: Stat) =>
    fps(s) > fps(best) || (fps(s) === fps(best) && pixels(s) > pixels(best));
  const main = entries.reduce((best, s) => (better(s, best) ? s : best));
  return {
    frameWidth: numberOr(main.frameWidth, null),
    frameHeight: numberOr(main.frameHeight, null),
    framesPerSecond: numberOr(main.framesPerSecond, null),
    frames: sum(entries, direction === "in" ? "framesDecoded" : "framesEncoded"),
    bytes: sum(entries, direction === "in" ? "bytesReceived" : "bytesSent"),
    mimeType: mimeOf(main),
  };
}

function firstMime(entries: Stat[], mimeOf: (s: Stat) => string | null): string | null {
  for (const entry of entries) {
    const mime = mimeOf(entry);
    if (mime !== null) return mime;
  }
  return null;
}

function sum(entries: Stat[], field: string): number {
  return entries.reduce((total, s) => total + numberOr(s[field], 0), 0);
}

function numberOr<T>(value: unknown, fallback: T): number | T {
  return typeof value === "number" && Number.isFinite(value) ? value : fallback;
}
