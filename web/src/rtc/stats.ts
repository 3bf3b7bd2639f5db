/**
 * What `getStats()` says about one member's connection, boiled down to the numbers that
 * prove media flows (tests read them) and a few for diagnostics.
 */

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
}

/**
 * Inbound numbers for one connection, and the bytes sent on it. The screen share is told from the camera by its
 * receiver track id (`screenTrackId`).
 */
export async function peerStats(
  pc: RTCPeerConnection,
  screenTrackId: string | null,
  extra: Pick<PeerStats, "trail" | "iceRestarts" | "rebuilds">,
): Promise<PeerStats> {
  const report = await pc.getStats();
  const result: PeerStats = {
    videoFramesDecoded: 0,
    screenFramesDecoded: 0,
    audioBytesReceived: 0,
    audioBytesSent: 0,
    videoBytesSent: 0,
    connection: pc.connectionState,
    signaling: pc.signalingState,
    ...selectedPairTypes(report),
    ...extra,
  };
  report.forEach((stat: Record<string, unknown>) => {
    if (stat.type === "outbound-rtp") {
      const sent = Number(stat.bytesSent ?? 0);
      if (stat.kind === "audio") result.audioBytesSent += sent;
      else if (stat.kind === "video") result.videoBytesSent += sent;
      return;
    }
    if (stat.type !== "inbound-rtp") return;
    if (stat.kind === "audio") result.audioBytesReceived += Number(stat.bytesReceived ?? 0);
    if (stat.kind !== "video") return;
    const frames = Number(stat.framesDecoded ?? 0);
    if (stat.trackIdentifier === screenTrackId) result.screenFramesDecoded += frames;
    else result.videoFramesDecoded += frames;
  });
  return result;
}

/**
 * The candidate types of the pair ICE selected: the transport's `selectedCandidatePairId`
 * (webrtc-stats 8.13), else a nominated pair that succeeded.
 */
export function selectedPairTypes(report: RTCStatsReport): {
  localCandidateType: string | null;
  remoteCandidateType: string | null;
} {
  const stats = new Map<string, Record<string, unknown>>();
  report.forEach((stat: Record<string, unknown>) => stats.set(String(stat.id), stat));
  const all = [...stats.values()];
  const transport = all.find((s) => s.type === "transport" && s.selectedCandidatePairId);
  const pair =
    (transport && stats.get(String(transport.selectedCandidatePairId))) ??
    all.find((s) => s.type === "candidate-pair" && s.nominated === true && s.state === "succeeded");
  const typeOf = (id: unknown) => {
    const candidate = id === undefined ? undefined : stats.get(String(id));
    return typeof candidate?.candidateType === "string" ? candidate.candidateType : null;
  };
  return {
    localCandidateType: typeOf(pair?.localCandidateId),
    remoteCandidateType: typeOf(pair?.remoteCandidateId),
  };
}
