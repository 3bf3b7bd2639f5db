/**
 * The mesh: one PeerLink (one RTCPeerConnection) per remote member of the room, and one
 * PeerRecovery per member that restarts ICE or rebuilds the connection when it breaks.
 *
 * Local camera and microphone tracks are sent in one stream; a screen share is sent with no
 * stream at all, which is how the receiving side tells a screen from a camera (its `track`
 * event has no streams). Device switches use `replaceTrack` (no renegotiation); starting and
 * stopping a screen share changes what its sender sends, which renegotiates.
 */
import { Emitter } from "../signaling/emitter";
import { EarlySignals } from "./early";
import { heardLevel } from "./level";
import { PeerLink, type RemoteHistory, type SignalPayload } from "./peer";
import {
  PeerRecovery,
  RECOVERY_POLICY,
  healthOf,
  type Recovery,
  type RecoveryPolicy,
  type ResetReason,
} from "./recovery";
import { peerStats, type PeerStats } from "./stats";

export type { Recovery, RecoveryPolicy, ResetReason } from "./recovery";
export { RECOVERY_POLICY } from "./recovery";
export type { PeerStats } from "./stats";
export { selectedPairTypes } from "./stats";

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
  /**
   * What is being done about a broken media connection: "restarting" (ICE restarts),
   * "rebuilding" (a new connection is on its way), "failed" (given up), or null.
   */
  readonly recovery: Recovery;
}

interface PeerEntry {
  readonly id: string;
  readonly polite: boolean;
  link: PeerLink;
  readonly recovery: PeerRecovery;
  camera: MediaStream | null;
  screen: MediaStream | null;
  screenTrackId: string | null;
  senders: { audio: RTCRtpSender | null; video: RTCRtpSender | null; screen: RTCRtpSender | null };
  iceRestarts: number;
  rebuilds: number;
}

export interface MeshOptions {
  /**
   * Fresh ICE servers (new TURN credentials) before an ICE restart: the room layer asks the
   * server (`ice_refresh`). null, an error or no answer within `iceServersTimeoutMs` restarts
   * with the servers in hand.
   */
  freshIceServers?: () => Promise<RTCIceServer[] | null>;
  /** Where local camera and microphone tracks are grouped; tests pass a fake. */
  streamFactory?: () => MediaStream | null;
  /** The restart and rebuild limits (RECOVERY_POLICY by default). */
  policy?: Partial<RecoveryPolicy>;
}

export interface LocalTracks {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
}

export class Mesh {
  private readonly peers = new Map<string, PeerEntry>();
  private readonly events = new Emitter<{ change: void }>();
  private readonly outStream: MediaStream | null;
  private tracks: LocalTracks = { audio: null, video: null, screen: null };
  private sending = { audio: true, video: true };
  private snapshot: readonly RemotePeer[] = [];
  private readonly early = new EarlySignals();
  private readonly policy: RecoveryPolicy;
  private readonly freshIceServers: (() => Promise<RTCIceServer[] | null>) | null;

  constructor(
    private readonly send: (to: string, payload: SignalPayload) => void,
    private config: RTCConfiguration,
    private readonly factory: PeerConnectionFactory = (c) => new RTCPeerConnection(c),
    options: MeshOptions = {},
  ) {
    const streamFactory =
      options.streamFactory ?? (() => (typeof MediaStream === "undefined" ? null : new MediaStream()));
    this.outStream = streamFactory();
    this.policy = { ...RECOVERY_POLICY, ...options.policy };
    this.freshIceServers = options.freshIceServers ?? null;
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
    const recovery = new PeerRecovery(
      polite,
      {
        health: () => {
          const pc = this.peers.get(id)?.link.pc;
          return pc === undefined ? "pending" : healthOf(pc.iceConnectionState, pc.connectionState);
        },
        restart: () => void this.restart(id),
        rebuild: (reason) => this.rebuild(id, reason),
        changed: () => this.changed(),
      },
      this.policy,
    );
    const entry: PeerEntry = {
      id,
      polite,
      link: this.connect(id, polite, recovery),
      recovery,
      camera: null,
      screen: null,
      screenTrackId: null,
      senders: { audio: null, video: null, screen: null },
      iceRestarts: 0,
      rebuilds: 0,
    };
    this.peers.set(id, entry);
    this.attachAll(entry);
    for (const payload of this.early.take(id)) void this.receive(id, payload);
    this.changed();
  }

  /**
   * Restart ICE now toward one member, or all: after the signaling connection came back
   * (the network may have changed under it). Each gets a fresh set of automatic attempts.
   */
  restartIce(id?: string): void {
    for (const entry of this.peers.values()) {
      if (id === undefined || entry.id === id) entry.recovery.restartNow();
    }
  }

  /** A member left: close its connection and forget it. */
  remove(id: string): void {
    const entry = this.peers.get(id);
    this.early.forget(id);
    if (entry === undefined) return;
    entry.recovery.dispose();
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

  /** A signal from a member: to its connection, or, for a `reset`, a new connection. */
  receive(from: string, payload: SignalPayload): Promise<void> {
    const entry = this.peers.get(from);
    if (entry === undefined) {
      this.early.keep(from, payload);
      return Promise.resolve();
    }
    if (payload.reset) {
      // The impolite side replaced its connection: replace ours, without answering with a
      // reset (only the impolite side sends one). Signals queued for the old one were
      // written for the connection it closed, so they go with it.
      this.rebuild(from, null);
      return Promise.resolve();
    }
    return entry.link.receive(payload);
  }

  /** Use this track for the microphone, camera or screen in every connection. */
  setTrack(kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    this.tracks = { ...this.tracks, [kind]: track };
    for (const entry of this.peers.values()) this.attach(entry, kind, track);
  }

  /**
   * Send the microphone or camera, or stop sending it. A disabled track alone still sends
   * RTP (silence, black frames); an encoding that is not `active` sends nothing at all
   * (webrtc-pc 5.2, `RTCRtpEncodingParameters.active`), without renegotiating. So a muted
   * microphone really is silent on the wire.
   */
  setSending(kind: "audio" | "video", on: boolean): void {
    if (this.sending[kind] === on) return;
    this.sending = { ...this.sending, [kind]: on };
    for (const entry of this.peers.values()) this.applySending(entry, kind);
  }

  private applySending(entry: PeerEntry, kind: "audio" | "video"): void {
    const sender = entry.senders[kind];
    if (sender === null || typeof sender.getParameters !== "function") return;
    const params = sender.getParameters();
    const [encoding] = params.encodings ?? [];
    if (encoding === undefined) return; // not negotiated yet; applied once connected
    const active = this.sending[kind];
    if (encoding.active === active) return;
    encoding.active = active;
    void sender.setParameters(params).catch(logError);
  }

  close(): void {
    this.early.clear();
    for (const entry of this.peers.values()) {
      entry.recovery.dispose();
      entry.link.close();
    }
    this.peers.clear();
    this.changed();
  }

  /** Current audio level (0..1) heard from a member, from RTP (RFC 6464) levels. */
  audioLevel(id: string): number {
    const entry = this.peers.get(id);
    if (entry === undefined) return 0;
    return heardLevel(entry.link.pc.getReceivers().filter((receiver) => receiver.track.kind === "audio"));
  }

  /**
   * getStats() numbers per member id, one call per connection (all at once): tests,
   * diagnostics and the quality figures (src/rtc/quality.ts) read them.
   */
  async stats(): Promise<Record<string, PeerStats>> {
    const entries = await Promise.all(
      [...this.peers].map(async ([id, entry]) => {
        const pc = entry.link.pc;
        const screenSender = entry.senders.screen;
        const screen = {
          inboundTrackId: entry.screenTrackId,
          outboundMid:
            screenSender === null
              ? null
              : (pc.getTransceivers().find((t) => t.sender === screenSender)?.mid ?? null),
        };
        const extra = {
          trail: [...entry.link.trail],
          iceRestarts: entry.iceRestarts,
          rebuilds: entry.rebuilds,
        };
        return [id, await peerStats(pc, screen, extra)] as const;
      }),
    );
    return Object.fromEntries(entries);
  }

  /** A new RTCPeerConnection and its link; the caller attaches the local tracks. */
  private connect(id: string, polite: boolean, recovery: PeerRecovery, retired?: RemoteHistory): PeerLink {
    const pc = this.factory(this.config);
    const link = new PeerLink(id, polite, pc, (payload) => this.send(id, payload), {
      onError: logError,
      onFailure: (failure) => recovery.failure(failure),
      onStateChange: () => {
        recovery.observe(healthOf(pc.iceConnectionState, pc.connectionState));
        if (pc.connectionState === "connected") {
          this.applyBudget();
          const entry = this.peers.get(id);
          if (entry?.link === link) {
            this.applySending(entry, "audio");
            this.applySending(entry, "video");
          }
        }
        this.changed();
      },
      ...(retired === undefined ? {} : { retired }),
    });
    return link;
  }

  private attachAll(entry: PeerEntry): void {
    const pc = entry.link.pc;
    pc.ontrack = (event) => this.onTrack(entry, event);
    if (!entry.polite) {
      // The impolite side always makes the first offer (see peer.ts for why the polite side
      // never does), so it must have something to offer even with nothing to send.
      for (const kind of ["audio", "video"] as const) {
        if (this.tracks[kind] === null) {
          entry.senders[kind] = pc.addTransceiver(kind, { direction: "recvonly" }).sender;
        }
      }
    }
    this.attach(entry, "audio", this.tracks.audio);
    this.attach(entry, "video", this.tracks.video);
    this.attach(entry, "screen", this.tracks.screen);
  }

  /**
   * Replace the connection toward a member: close it, open a new one with the same
   * politeness and the local tracks; the impolite side's negotiationneeded then offers.
   * `reason` is sent as a `reset` (impolite side); null when answering the remote's reset.
   */
  private rebuild(id: string, reason: ResetReason | null): void {
    const entry = this.peers.get(id);
    if (entry === undefined || !entry.recovery.takeRebuild()) return;
    const retired = entry.link.remoteHistory();
    entry.link.close();
    // Before anything of the new connection, so the remote sees the signals in that order.
    if (reason !== null) this.send(id, { reset: { reason } });
    entry.rebuilds += 1;
    entry.camera = null;
    entry.screen = null;
    entry.screenTrackId = null;
    entry.senders = { audio: null, video: null, screen: null };
    entry.link = this.connect(id, entry.polite, entry.recovery, retired);
    this.attachAll(entry);
    entry.recovery.rebuilt();
    this.changed();
  }

  /** One ICE restart: fresh TURN credentials if the room can get them, then `restartIce()`. */
  private async restart(id: string): Promise<void> {
    const entry = this.peers.get(id);
    if (entry === undefined) return;
    const link = entry.link;
    entry.iceRestarts += 1;
    const iceServers = await this.askIceServers();
    if (this.peers.get(id)?.link !== link) return; // rebuilt or gone meanwhile
    if (iceServers !== null) this.setIceServers(iceServers);
    link.restartIce();
  }

  private async askIceServers(): Promise<RTCIceServer[] | null> {
    if (this.freshIceServers === null) return null;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((resolve) => {
      timer = setTimeout(() => resolve(null), this.policy.iceServersTimeoutMs);
    });
    try {
      return await Promise.race([this.freshIceServers(), timeout]);
    } catch (error) {
      logError(error);
      return null;
    } finally {
      clearTimeout(timer);
    }
  }

  private attach(entry: PeerEntry, kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    const pc = entry.link.pc;
    const sender = entry.senders[kind];
    if (kind === "screen") {
      this.attachScreen(entry, track);
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

  /**
   * A screen share has a sender of its own. Stopping it is `removeTrack` (webrtc-pc: the
   * transceiver stays and only receives); starting again reuses that transceiver, because
   * `addTrack` never reuses one that has sent: each share would add an m-line for good, and
   * after about ten shares the SDP (5 kB per video m-line in Chromium) outgrows the
   * signaling frame limit (64 kB). Both renegotiate; switching the shared window does not.
   */
  private attachScreen(entry: PeerEntry, track: MediaStreamTrack | null): void {
    const pc = entry.link.pc;
    const sender = entry.senders.screen;
    if (pc.signalingState === "closed") return;
    if (track === null) {
      if (sender?.track) pc.removeTrack(sender);
      return;
    }
    const transceiver = pc.getTransceivers().find((t) => t.sender === sender);
    if (sender === null || transceiver === undefined || transceiver.currentDirection === "stopped") {
      entry.senders.screen = pc.addTrack(track);
      return;
    }
    if (sender.track !== track) void sender.replaceTrack(track).catch(logError);
    if (transceiver.direction === "recvonly") transceiver.direction = "sendrecv";
    if (transceiver.direction === "inactive") transceiver.direction = "sendonly";
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
      polite: entry.polite,
      camera: entry.camera,
      screen: entry.screen,
      connection: entry.link.pc.connectionState,
      recovery: entry.recovery.state,
    }));
    this.events.emit("change", undefined);
  }
}

function logError(error: unknown): void {
  console.warn("salon rtc:", error);
}
