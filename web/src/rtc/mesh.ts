/**
 * The mesh: one PeerLink (one RTCPeerConnection) per remote member of the room.
 *
 * Local camera and microphone tracks are sent in one stream; a screen share is sent with no
 * stream at all, which is how the receiving side tells a screen from a camera (its `track`
 * event has no streams). Device switches use `replaceTrack` (no renegotiation); starting and
 * stopping a screen share adds and removes a sender, which renegotiates.
 */
import { Emitter } from "../signaling/emitter";
import { PeerLink, type SignalPayload } from "./peer";

/** The camera's total upload across all peers, and the least any one peer gets. */
const VIDEO_BUDGET_BPS = 2_500_000;
const MIN_VIDEO_BPS = 250_000;

export type PeerConnectionFactory = (config: RTCConfiguration) => RTCPeerConnection;

export interface RemotePeer {
  readonly id: string;
  readonly polite: boolean;
  /** The camera and microphone stream, once a track has arrived. */
  readonly camera: MediaStream | null;
  /** The latest screen-share track's stream (show it only while the member says screen). */
  readonly screen: MediaStream | null;
  readonly connection: RTCPeerConnectionState;
}

interface PeerEntry {
  link: PeerLink;
  camera: MediaStream | null;
  screen: MediaStream | null;
  screenTrackId: string | null;
  senders: { audio: RTCRtpSender | null; video: RTCRtpSender | null; screen: RTCRtpSender | null };
}

export interface LocalTracks {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
}

export interface PeerStats {
  videoFramesDecoded: number;
  screenFramesDecoded: number;
  audioBytesReceived: number;
  connection: RTCPeerConnectionState;
  signaling: RTCSignalingState;
  trail: string[];
  /** The candidate types of the selected pair ("host", "srflx", "prflx", "relay"), if any. */
  localCandidateType: string | null;
  remoteCandidateType: string | null;
}

export class Mesh {
  private readonly peers = new Map<string, PeerEntry>();
  private readonly events = new Emitter<{ change: void }>();
  private readonly outStream: MediaStream | null;
  private tracks: LocalTracks = { audio: null, video: null, screen: null };
  private snapshot: readonly RemotePeer[] = [];

  constructor(
    private readonly send: (to: string, payload: SignalPayload) => void,
    private config: RTCConfiguration,
    private readonly factory: PeerConnectionFactory = (c) => new RTCPeerConnection(c),
    streamFactory: () => MediaStream | null = () =>
      typeof MediaStream === "undefined" ? null : new MediaStream(),
  ) {
    this.outStream = streamFactory();
  }

  onChange(handler: () => void): () => void {
    return this.events.on("change", handler);
  }

  /** The remote peers, as an immutable snapshot that changes identity on every change. */
  get remote(): readonly RemotePeer[] {
    return this.snapshot;
  }

  /** New ICE servers (fresh TURN credentials) for every connection, now and later. */
  setIceServers(iceServers: RTCIceServer[]): void {
    this.config = { ...this.config, iceServers };
    for (const entry of this.peers.values()) {
      const pc = entry.link.pc;
      try {
        // Keep what the connection was made with (webrtc-pc 4.4.1.4: some members cannot change).
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
      } catch (error) {
        logError(error);
      }
    }
  }

  has(id: string): boolean {
    return this.peers.has(id);
  }

  /** Start a connection toward a member; `polite` comes from the server. */
  add(id: string, polite: boolean): void {
    if (this.peers.has(id)) return;
    const pc = this.factory(this.config);
    const entry: PeerEntry = {
      link: new PeerLink(id, polite, pc, (payload) => this.send(id, payload), logError),
      camera: null,
      screen: null,
      screenTrackId: null,
      senders: { audio: null, video: null, screen: null },
    };
    this.peers.set(id, entry);
    pc.ontrack = (event) => this.onTrack(entry, event);
    pc.onconnectionstatechange = () => {
      globalThis.performance?.mark?.(`salon:rtc connection ${pc.connectionState}`);
      if (pc.connectionState === "connected") this.applyBudget();
      this.changed();
    };
    if (!polite) {
      // The impolite side makes the first offer (the polite side waits for it), so it offers
      // to receive audio and video even when it has nothing to send.
      for (const kind of ["audio", "video"] as const) {
        if (this.tracks[kind] === null) {
          entry.senders[kind] = pc.addTransceiver(kind, { direction: "recvonly" }).sender;
        }
      }
    }
    this.attach(entry, "audio", this.tracks.audio);
    this.attach(entry, "video", this.tracks.video);
    this.attach(entry, "screen", this.tracks.screen);
    this.changed();
  }

  /** A member left: close its connection and forget it. */
  remove(id: string): void {
    const entry = this.peers.get(id);
    if (entry === undefined) return;
    entry.link.close();
    this.peers.delete(id);
    this.applyBudget();
    this.changed();
  }

  /**
   * In a mesh every camera frame is encoded once per peer, so the uplink and the CPU grow
   * with the room: share a fixed bitrate budget, and halve the resolution from three peers.
   */
  private applyBudget(): void {
    const peers = this.peers.size;
    const maxBitrate = Math.max(MIN_VIDEO_BPS, Math.floor(VIDEO_BUDGET_BPS / Math.max(1, peers)));
    const scaleResolutionDownBy = peers >= 3 ? 2 : 1;
    for (const entry of this.peers.values()) {
      const sender = entry.senders.video;
      if (sender === null || typeof sender.getParameters !== "function") continue;
      const params = sender.getParameters();
      const [encoding] = params.encodings ?? [];
      if (encoding === undefined) continue; // not negotiated yet; applied once connected
      if (encoding.maxBitrate === maxBitrate && encoding.scaleResolutionDownBy === scaleResolutionDownBy)
        continue;
      encoding.maxBitrate = maxBitrate;
      encoding.scaleResolutionDownBy = scaleResolutionDownBy;
      void sender.setParameters(params).catch(logError); // webrtc-pc 5.2, no renegotiation
    }
  }

  receive(from: string, payload: SignalPayload): Promise<void> {
    const entry = this.peers.get(from);
    return entry === undefined ? Promise.resolve() : entry.link.receive(payload);
  }

  /** Use this track for the microphone, camera or screen in every connection. */
  setTrack(kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    this.tracks = { ...this.tracks, [kind]: track };
    for (const entry of this.peers.values()) this.attach(entry, kind, track);
  }

  close(): void {
    for (const entry of this.peers.values()) entry.link.close();
    this.peers.clear();
    this.changed();
  }

  /** Current audio level (0..1) heard from a member, from RTP (RFC 6464) levels. */
  audioLevel(id: string): number {
    const entry = this.peers.get(id);
    if (entry === undefined) return 0;
    let level = 0;
    for (const receiver of entry.link.pc.getReceivers()) {
      if (receiver.track.kind !== "audio") continue;
      for (const source of receiver.getSynchronizationSources()) {
        if (Date.now() - source.timestamp < 500) level = Math.max(level, source.audioLevel ?? 0);
      }
    }
    return level;
  }

  /** Inbound numbers per member, from getStats(): used by tests and diagnostics. */
  async stats(): Promise<Record<string, PeerStats>> {
    const out: Record<string, PeerStats> = {};
    for (const [id, entry] of this.peers) {
      const report = await entry.link.pc.getStats();
      const result: PeerStats = {
        videoFramesDecoded: 0,
        screenFramesDecoded: 0,
        audioBytesReceived: 0,
        connection: entry.link.pc.connectionState,
        signaling: entry.link.pc.signalingState,
        trail: [...entry.link.trail],
        ...selectedPairTypes(report),
      };
      report.forEach((stat: Record<string, unknown>) => {
        if (stat.type !== "inbound-rtp") return;
        if (stat.kind === "audio") result.audioBytesReceived += Number(stat.bytesReceived ?? 0);
        if (stat.kind !== "video") return;
        const frames = Number(stat.framesDecoded ?? 0);
        if (stat.trackIdentifier === entry.screenTrackId) result.screenFramesDecoded += frames;
        else result.videoFramesDecoded += frames;
      });
      out[id] = result;
    }
    return out;
  }

  private attach(entry: PeerEntry, kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    const pc = entry.link.pc;
    const sender = entry.senders[kind];
    if (kind === "screen") {
      // Adding or removing a sender renegotiates (negotiationneeded).
      if (sender !== null && pc.signalingState !== "closed") pc.removeTrack(sender);
      entry.senders.screen = track === null ? null : pc.addTrack(track);
      return;
    }
    if (sender !== null) {
      void sender.replaceTrack(track).catch(logError); // no renegotiation (webrtc-pc 5.2)
      const transceiver = pc.getTransceivers().find((t) => t.sender === sender);
      if (track !== null && transceiver?.direction === "recvonly") transceiver.direction = "sendrecv";
    } else if (track !== null) {
      entry.senders[kind] = this.outStream === null ? pc.addTrack(track) : pc.addTrack(track, this.outStream);
    }
  }

  private onTrack(entry: PeerEntry, event: RTCTrackEvent): void {
    globalThis.performance?.mark?.(`salon:rtc track ${event.track.kind}`);
    const [stream] = event.streams;
    if (stream === undefined) {
      entry.screen = new MediaStream([event.track]);
      entry.screenTrackId = event.track.id;
    } else {
      entry.camera = stream;
      stream.onaddtrack = () => this.changed();
      stream.onremovetrack = () => this.changed();
    }
    this.changed();
  }

  private changed(): void {
    this.snapshot = [...this.peers].map(([id, entry]) => ({
      id,
      polite: entry.link.polite,
      camera: entry.camera,
      screen: entry.screen,
      connection: entry.link.pc.connectionState,
    }));
    this.events.emit("change", undefined);
  }
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

function logError(error: unknown): void {
  console.warn("salon rtc:", error);
}
