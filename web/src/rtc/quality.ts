/**
 * Call quality from two `getStats()` samples (src/rtc/stats.ts): round-trip time, loss over
 * the last interval, frame rate, bitrates, codecs, resolutions, the ICE path, and a level
 * (good, fair, poor) a person can read at a glance. Pure: no timers, no I/O; the caller
 * samples once a second and feeds the samples in (src/ui/hooks/quality.ts).
 *
 * Field names follow W3C webrtc-stats; each docstring says which dictionary a number comes from.
 */
import type { PeerStats, VideoFlow } from "./stats";

export type QualityLevel = "good" | "fair" | "poor" | "unknown";
/** "relayed": one end of the selected pair is a TURN relay candidate; "direct" otherwise. */
export type PathKind = "direct" | "relayed" | "unknown";

/**
 * Where "good" ends. Over a poor limit → poor; over a fair limit → fair. Round trips near
 * 300 ms make conversation awkward (ITU-T G.114 puts the comfortable one-way delay under
 * 150 ms); a few percent of loss is where audio concealment and video freezes become audible
 * and visible.
 */
export const QUALITY_LIMITS = {
  poorRoundTripMs: 300,
  poorLossPercent: 5,
  fairRoundTripMs: 150,
  fairLossPercent: 2,
  /** A camera received at fewer frames a second than this looks jerky. */
  fairFramesPerSecond: 12,
} as const;

export type QualityLimits = { readonly [K in keyof typeof QUALITY_LIMITS]: number };

/** kbit/s per kind, from byte counter deltas; null without a previous sample to compare. */
export interface Bitrates {
  audio: number | null;
  video: number | null;
}

/** One video stream as it is now: its size, frame rate and codec. */
export interface VideoQuality {
  /** RTCInboundRtpStreamStats / RTCOutboundRtpStreamStats `frameWidth` and `frameHeight`. */
  width: number;
  height: number;
  /** `framesPerSecond`, or frames decoded/encoded over the interval when the browser omits it. */
  framesPerSecond: number | null;
  /** RTCCodecStats `mimeType` without its kind: "VP8", "H264". */
  codec: string | null;
}

/** What the UI shows for one remote member's connection. */
export interface PeerQuality {
  level: QualityLevel;
  path: PathKind;
  /** RTCIceCandidatePairStats `currentRoundTripTime` of the selected pair, in ms. */
  roundTripMs: number | null;
  /**
   * RTCInboundRtpStreamStats `packetsLost` / (`packetsReceived` + `packetsLost`), audio and
   * video together, over the last interval (since the start for the first sample), in %.
   */
  lossPercent: number | null;
  /** The received camera's frame rate (RTCInboundRtpStreamStats `framesPerSecond`). */
  framesPerSecond: number | null;
  /** Video streams that are flowing (their frame counter moved); null when off or stalled. */
  cameraIn: VideoQuality | null;
  screenIn: VideoQuality | null;
  cameraOut: VideoQuality | null;
  screenOut: VideoQuality | null;
  /** RTCCodecStats `mimeType` of the audio, without its kind: "opus". */
  audioCodecIn: string | null;
  audioCodecOut: string | null;
  /** From RTCInboundRtpStreamStats `bytesReceived` and RTCOutboundRtpStreamStats `bytesSent`. */
  bitrateIn: Bitrates;
  bitrateOut: Bitrates;
  /** RTCIceCandidateStats `candidateType` of the selected pair's ends. */
  localCandidateType: string | null;
  remoteCandidateType: string | null;
  connection: RTCPeerConnectionState;
}

/** The fields of a sample that quality reads. */
export type QualitySample = Pick<
  PeerStats,
  | "timestamp"
  | "connection"
  | "rebuilds"
  | "currentRoundTripTime"
  | "packetsReceived"
  | "packetsLost"
  | "audioBytesReceived"
  | "videoBytesReceived"
  | "audioBytesSent"
  | "videoBytesSent"
  | "cameraIn"
  | "screenIn"
  | "cameraOut"
  | "screenOut"
  | "audioCodecIn"
  | "audioCodecOut"
  | "localCandidateType"
  | "remoteCandidateType"
>;

/**
 * Quality now, from the latest sample and the one before it (null for the first). A previous
 * sample from another connection (rebuilt, or counters that went back) is ignored.
 */
export function qualityOf(
  current: QualitySample,
  previous: QualitySample | null,
  limits: QualityLimits = QUALITY_LIMITS,
): PeerQuality {
  const before = comparable(current, previous) ? previous : null;
  const elapsedMs = before === null ? null : current.timestamp - before.timestamp;
  const rate = (now: number, then: number | undefined) =>
    elapsedMs === null || then === undefined ? null : kbitPerSecond(now - then, elapsedMs);
  const cameraIn = videoQuality(current.cameraIn, before?.cameraIn ?? null, elapsedMs);
  const partial = {
    path: pathOf(current.localCandidateType, current.remoteCandidateType),
    roundTripMs: current.currentRoundTripTime === null ? null : current.currentRoundTripTime * 1000,
    lossPercent: lossPercent(current, before),
    framesPerSecond: cameraIn?.framesPerSecond ?? null,
    cameraIn,
    screenIn: videoQuality(current.screenIn, before?.screenIn ?? null, elapsedMs),
    cameraOut: videoQuality(current.cameraOut, before?.cameraOut ?? null, elapsedMs),
    screenOut: videoQuality(current.screenOut, before?.screenOut ?? null, elapsedMs),
    audioCodecIn: codecName(current.audioCodecIn),
    audioCodecOut: codecName(current.audioCodecOut),
    bitrateIn: {
      audio: rate(current.audioBytesReceived, before?.audioBytesReceived),
      video: rate(current.videoBytesReceived, before?.videoBytesReceived),
    },
    bitrateOut: {
      audio: rate(current.audioBytesSent, before?.audioBytesSent),
      video: rate(current.videoBytesSent, before?.videoBytesSent),
    },
    localCandidateType: current.localCandidateType,
    remoteCandidateType: current.remoteCandidateType,
    connection: current.connection,
  };
  return { level: levelOf(partial, limits), ...partial };
}

/**
 * The level a person sees. A connection that is not up yet is unknown; one that dropped is
 * poor; otherwise the worst of round trip, loss and camera frame rate decides.
 */
export function levelOf(
  q: Pick<PeerQuality, "connection" | "roundTripMs" | "lossPercent" | "framesPerSecond">,
  limits: QualityLimits = QUALITY_LIMITS,
): QualityLevel {
  if (q.connection === "disconnected" || q.connection === "failed") return "poor";
  if (q.connection !== "connected") return "unknown";
  if (q.roundTripMs === null && q.lossPercent === null) return "unknown";
  const rtt = q.roundTripMs ?? 0;
  const loss = q.lossPercent ?? 0;
  if (rtt > limits.poorRoundTripMs || loss > limits.poorLossPercent) return "poor";
  const slow = q.framesPerSecond !== null && q.framesPerSecond < limits.fairFramesPerSecond;
  if (rtt > limits.fairRoundTripMs || loss > limits.fairLossPercent || slow) return "fair";
  return "good";
}

/** Relayed when either end of the selected pair is a relay candidate (RFC 8445 §5.1.1). */
export function pathOf(local: string | null, remote: string | null): PathKind {
  if (local === "relay" || remote === "relay") return "relayed";
  if (local === null || remote === null) return "unknown";
  return "direct";
}

/** Loss over the interval; since the start without a previous sample; null with no packets. */
export function lossPercent(
  current: Pick<QualitySample, "packetsLost" | "packetsReceived">,
  previous: Pick<QualitySample, "packetsLost" | "packetsReceived"> | null,
): number | null {
  // packetsLost can go down when late packets arrive after all (RFC 3550 §6.4.1): not < 0.
  const lost = Math.max(0, current.packetsLost - (previous?.packetsLost ?? 0));
  const received = Math.max(0, current.packetsReceived - (previous?.packetsReceived ?? 0));
  const expected = lost + received;
  return expected === 0 ? null : (lost / expected) * 100;
}

/** Bytes over milliseconds as kbit/s (1 kbit = 1000 bits); null over no time. */
export function kbitPerSecond(bytes: number, elapsedMs: number): number | null {
  if (elapsedMs <= 0 || bytes < 0) return null;
  return (bytes * 8) / elapsedMs;
}

/** The subtype of a codec's mimeType: "video/VP8" → "VP8". */
export function codecName(mimeType: string | null): string | null {
  if (mimeType === null) return null;
  const slash = mimeType.indexOf("/");
  return slash === -1 ? mimeType : mimeType.slice(slash + 1);
}

/**
 * Tracks a sample per member and turns each new round of samples into quality figures;
 * members missing from a round are forgotten.
 */
export class QualityTracker {
  private previous = new Map<string, QualitySample>();

  constructor(private readonly limits: QualityLimits = QUALITY_LIMITS) {}

  update(samples: Readonly<Record<string, QualitySample>>): Map<string, PeerQuality> {
    const out = new Map<string, PeerQuality>();
    const next = new Map<string, QualitySample>();
    for (const [id, sample] of Object.entries(samples)) {
      out.set(id, qualityOf(sample, this.previous.get(id) ?? null, this.limits));
      next.set(id, sample);
    }
    this.previous = next;
    return out;
  }
}

/** The same connection, later: not rebuilt, time went on and no counter went back. */
function comparable(current: QualitySample, previous: QualitySample | null): previous is QualitySample {
  if (previous === null) return false;
  if (current.rebuilds !== previous.rebuilds || current.timestamp <= previous.timestamp) return false;
  const counters = [
    "packetsReceived",
    "audioBytesReceived",
    "videoBytesReceived",
    "audioBytesSent",
    "videoBytesSent",
  ] as const;
  return counters.every((key) => current[key] >= previous[key]);
}

/**
 * A flow that is moving: frames went up since the last sample (or, for the first sample,
 * some were ever counted) and it has a size. A camera turned off keeps its last size in the
 * stats but stops counting frames, so it is reported as null.
 */
function videoQuality(
  flow: VideoFlow | null,
  before: VideoFlow | null,
  elapsedMs: number | null,
): VideoQuality | null {
  if (flow === null || flow.frameWidth === null || flow.frameHeight === null) return null;
  const counted = before !== null && elapsedMs !== null && flow.frames >= before.frames;
  const moved = counted ? flow.frames - before.frames : flow.frames;
  if (moved <= 0) return null;
  const measured = counted ? (moved * 1000) / elapsedMs : null;
  return {
    width: flow.frameWidth,
    height: flow.frameHeight,
    framesPerSecond: flow.framesPerSecond ?? measured,
    codec: codecName(flow.mimeType),
  };
}

// Words: what the indicator says aloud and the statistics panel shows. Units spelled out.

/** "12 ms"; round trips are shown to the millisecond. */
export function formatMs(ms: number): string {
  return `${Math.round(ms)} ms`;
}

/** "0%", "0.4%", "12%": one decimal below 10 %, where it still tells something. */
export function formatPercent(percent: number): string {
  const shown = percent < 10 ? Math.round(percent * 10) / 10 : Math.round(percent);
  return `${shown}%`;
}

export function formatFps(fps: number): string {
  return `${Math.round(fps)} frames/s`;
}

export function formatKbps(kbps: number): string {
  return `${Math.round(kbps)} kbit/s`;
}

export function formatResolution(video: Pick<VideoQuality, "width" | "height">): string {
  return `${video.width}×${video.height}`;
}

/** Both kinds together, null when neither is known. */
export function totalBitrate(rates: Bitrates): number | null {
  if (rates.audio === null && rates.video === null) return null;
  return (rates.audio ?? 0) + (rates.video ?? 0);
}

const CANDIDATE_WORDS: Record<string, string> = {
  host: "Device address",
  srflx: "Public address through a router",
  prflx: "Address found while connecting",
  relay: "Relay server",
};

/** An ICE candidate type (RFC 8445 §5.1.1) in words, the type itself in brackets. */
export function candidateWords(type: string | null): string | null {
  if (type === null) return null;
  const words = CANDIDATE_WORDS[type];
  return words === undefined ? type : `${words} (${type})`;
}

/** The accessible label: "Connection good: 12 ms round trip, 0% loss, 30 frames/s, direct". */
export function describeQuality(q: PeerQuality | undefined): string {
  if (q === undefined || q.level === "unknown") return "Connection quality not known yet";
  if (q.connection === "disconnected" || q.connection === "failed") return "Connection poor: interrupted";
  const parts = [
    q.roundTripMs === null ? null : `${formatMs(q.roundTripMs)} round trip`,
    q.lossPercent === null ? null : `${formatPercent(q.lossPercent)} loss`,
    q.framesPerSecond === null ? null : formatFps(q.framesPerSecond),
    q.path === "unknown" ? null : q.path,
  ].filter((p) => p !== null);
  return `Connection ${q.level}: ${parts.join(", ")}`;
}

/** The tooltip: the numbers behind the level, one a line. */
export function qualityDetails(q: PeerQuality | undefined): string {
  if (q === undefined) return "Measuring the connection…";
  const down = totalBitrate(q.bitrateIn);
  const up = totalBitrate(q.bitrateOut);
  const camera = q.cameraIn;
  const lines = [
    describeQuality(q),
    q.roundTripMs === null ? null : `Round trip: ${formatMs(q.roundTripMs)}`,
    q.lossPercent === null ? null : `Packets lost: ${formatPercent(q.lossPercent)}`,
    camera === null
      ? null
      : `Camera: ${formatResolution(camera)}${camera.framesPerSecond === null ? "" : `, ${formatFps(camera.framesPerSecond)}`}`,
    q.path === "unknown" ? null : `Path: ${q.path === "relayed" ? "relayed through a server" : "direct"}`,
    down === null ? null : `Receiving: ${formatKbps(down)}`,
    up === null ? null : `Sending: ${formatKbps(up)}`,
  ];
  return lines.filter((l) => l !== null).join("\n");
}
