/**
 * Fakes for the browser objects the client core uses: a WebSocket and an RTCPeerConnection
 * that models the JSEP signaling states (webrtc-pc 4.3.1), including implicit rollback,
 * negotiationneeded, ICE restarts, descriptions that fail to apply, and the `mid`s and
 * receivers of transceivers (an SFU's offer makes one per m-line).
 */
import { vi } from "vitest";
import type { Limits } from "../protocol";
import type { SocketLike } from "../signaling/client";

/** The server's default limits, as a `welcome` announces them. */
export const LIMITS: Limits = {
  max_frame_bytes: 65536,
  max_name_chars: 64,
  max_chat_chars: 4000,
  max_room_members: 8,
  rate_per_second: 50,
  rate_burst: 200,
  ping_after_seconds: 20,
  dead_after_seconds: 45,
  ring_seconds: 30,
  resume_grace_seconds: 60,
};

export class FakeSocket implements SocketLike {
  readyState = 0;
  sent: unknown[] = [];
  onopen: SocketLike["onopen"] = null;
  onmessage: SocketLike["onmessage"] = null;
  onclose: SocketLike["onclose"] = null;
  onerror: SocketLike["onerror"] = null;
  closedWith: number | null = null;

  send(data: string): void {
    this.sent.push(JSON.parse(data));
  }
  close(code = 1000): void {
    this.closedWith = code;
    this.readyState = 3;
  }
  // test side
  open(): void {
    this.readyState = 1;
    this.onopen?.({});
  }
  receive(message: object): void {
    this.onmessage?.({ data: JSON.stringify(message) });
  }
  drop(code = 1006): void {
    this.readyState = 3;
    this.onclose?.({ code, reason: "" });
  }
}

const tick = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

let sdpCounter = 0;
let sessionCounter = 0;
let ufragCounter = 0;
const newUfrag = () => `u${++ufragCounter}`;

class FakeSender {
  /** One encoding, as after negotiation (webrtc-pc 5.2 `getParameters`), unless given more. */
  encodings: RTCRtpEncodingParameters[];
  constructor(
    public track: unknown,
    sendEncodings?: RTCRtpEncodingParameters[],
  ) {
    this.encodings = sendEncodings?.map((e) => ({ active: true, ...e })) ?? [{ active: true }];
  }
  async replaceTrack(track: unknown): Promise<void> {
    this.track = track;
  }
  getParameters(): RTCRtpSendParameters {
    return { encodings: this.encodings.map((e) => ({ ...e })) } as RTCRtpSendParameters;
  }
  async setParameters(params: RTCRtpSendParameters): Promise<void> {
    this.encodings = params.encodings.map((e) => ({ ...e }));
  }
}

let receiverCounter = 0;

class FakeReceiver {
  /** What `getSynchronizationSources` returns: tests set the levels heard. */
  sources: RTCRtpSynchronizationSource[] = [];
  readonly track: { kind: string; id: string };
  constructor(kind: string) {
    this.track = { kind, id: `received-${kind}-${++receiverCounter}` };
  }
  getSynchronizationSources(): RTCRtpSynchronizationSource[] {
    return this.sources;
  }
}

class FakeTransceiver {
  currentDirection: string | null = null;
  /** Set by the first offer that includes it (ours or the remote's `a=mid:`), as JSEP does. */
  mid: string | null = null;
  readonly receiver: FakeReceiver;
  constructor(
    public sender: FakeSender,
    private wanted: string,
    private readonly changed: () => void,
    kind = "video", // of its receiver's track; only the SFU tests read it
  ) {
    this.receiver = new FakeReceiver(kind);
  }
  get direction(): string {
    return this.wanted;
  }
  /** A new direction needs negotiating (webrtc-pc, "update the negotiation-needed flag"). */
  set direction(direction: string) {
    if (direction === this.wanted) return;
    this.wanted = direction;
    this.changed();
  }
}

/** The m-lines of an SDP: each `m=` line's kind and the `a=mid:` under it. */
function mLinesOf(sdp: string | undefined): { kind: string; mid: string }[] {
  const found: { kind: string; mid: string }[] = [];
  let kind: string | null = null;
  for (const line of (sdp ?? "").split(/\r?\n/)) {
    kind = /^m=(\w+)/.exec(line)?.[1] ?? kind;
    const mid = /^a=mid:(\S+)/.exec(line)?.[1];
    if (mid !== undefined && kind !== null) found.push({ kind, mid });
  }
  return found;
}

/** The ICE username fragment a fake SDP carries (`a=ice-ufrag:`). */
export const ufragOf = (sdp: string | undefined) => /a=ice-ufrag:(\S+)/.exec(sdp ?? "")?.[1] ?? null;

const CONNECTION_STATE: Record<RTCIceConnectionState, RTCPeerConnectionState> = {
  new: "new",
  checking: "connecting",
  connected: "connected",
  completed: "connected",
  disconnected: "disconnected",
  failed: "failed",
  closed: "closed",
};

/**
 * An RTCPeerConnection with real signaling-state rules and nothing else. Its SDP is not real
 * but carries what the client reads: an `o=` session id (one per connection) and the ICE
 * ufrag (new after `restartIce()`, and in an answer to an offer that restarted ICE).
 */
export class FakePeerConnection {
  signalingState: RTCSignalingState = "stable";
  connectionState: RTCPeerConnectionState = "new";
  iceConnectionState: RTCIceConnectionState = "new";
  iceGatheringState: RTCIceGatheringState = "new";
  /** How many of the next gatherings produce no candidate and stay "gathering" for good. */
  stallGatherings = 0;
  localDescription: RTCSessionDescriptionInit | null = null;
  remoteDescription: RTCSessionDescriptionInit | null = null;
  candidates: RTCIceCandidateInit[] = [];
  transceivers: FakeTransceiver[] = [];
  /** What `getStats()` resolves with: tests put RTCStats entries in it, by id. */
  report = new Map<string, unknown>();
  restarts = 0;
  closed = false;
  onnegotiationneeded: (() => void) | null = null;
  onicecandidate: ((e: { candidate: unknown }) => void) | null = null;
  ontrack: ((e: unknown) => void) | null = null;
  onconnectionstatechange: (() => void) | null = null;
  oniceconnectionstatechange: (() => void) | null = null;
  /** When true, addTransceiver throws for `sendEncodings` (a browser without simulcast). */
  refuseSendEncodings = false;
  /** When set and true for a description, setRemoteDescription throws (it "did not apply"). */
  refuseRemote: ((description: RTCSessionDescriptionInit) => boolean) | null = null;
  /** Every configuration given to setConfiguration, oldest first. */
  readonly configurations: RTCConfiguration[] = [];
  readonly sessionId = String(4_000_000_000 + ++sessionCounter);
  ufrag = newUfrag();
  private version = 0;
  private stableLocal: RTCSessionDescriptionInit | null = null;
  private stableUfrag = this.ufrag;
  /** Changes not yet in an offer that was answered (webrtc-pc 4.7: "negotiation-needed"). */
  private changes = 0;
  private offeredChanges = 0;
  private restartPending = false;
  private nextMid = 0;

  constructor(readonly label: string) {}

  async setLocalDescription(): Promise<void> {
    await tick();
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    if (this.signalingState === "have-remote-offer") {
      // An answer to an offer that restarted ICE has new credentials too (JSEP, RFC 8829),
      // which also does what a pending restartIce() asked for.
      if (ufragOf(this.remoteDescription?.sdp) !== this.remoteUfragWhenStable) {
        this.ufrag = newUfrag();
        this.restartPending = false;
      }
      this.localDescription = { type: "answer", sdp: this.sdp("answer") };
      this.enterStable();
    } else if (this.signalingState === "stable" || this.signalingState === "have-local-offer") {
      if (this.restartPending && this.ufrag === this.stableUfrag) this.ufrag = newUfrag();
      for (const transceiver of this.transceivers) transceiver.mid ??= String(this.nextMid++);
      this.offeredChanges = this.changes;
      this.localDescription = { type: "offer", sdp: this.sdp("offer") };
      this.signalingState = "have-local-offer";
    } else {
      throw new DOMException("wrong state", "InvalidStateError");
    }
    this.gather();
  }

  async setRemoteDescription(description: RTCSessionDescriptionInit): Promise<void> {
    await tick();
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    if (this.refuseRemote?.(description)) {
      throw new DOMException(`Failed to set remote ${description.type} sdp`, "OperationError");
    }
    if (description.type === "offer") {
      if (this.signalingState === "have-local-offer") {
        // Implicit rollback (webrtc-pc, setRemoteDescription): back to the last stable state.
        this.localDescription = this.stableLocal;
        this.ufrag = this.stableUfrag;
      } else if (this.signalingState !== "stable") {
        throw new DOMException("wrong state", "InvalidStateError");
      }
      this.remoteUfragWhenStable = ufragOf(this.remoteDescription?.sdp);
      this.signalingState = "have-remote-offer";
      this.remoteDescription = description;
      this.addRemoteMLines(description.sdp);
    } else if (description.type === "answer") {
      if (this.signalingState !== "have-local-offer")
        throw new DOMException("wrong state", "InvalidStateError");
      this.remoteDescription = description;
      if (this.offeredChanges === this.changes) this.changes = this.offeredChanges = 0;
      if (this.ufrag !== this.stableUfrag) this.restartPending = false;
      this.enterStable();
    }
  }

  async addIceCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    if (this.closed) throw new DOMException("closed", "InvalidStateError");
    if (this.remoteDescription === null) throw new DOMException("no remote description", "InvalidStateError");
    const ufrag = candidate.usernameFragment;
    if (ufrag != null && ufrag !== ufragOf(this.remoteDescription.sdp)) {
      throw new DOMException("unknown ufrag", "OperationError");
    }
    this.candidates.push(candidate);
  }

  /** A new transceiver each time: like the browser's once a sender has sent. */
  addTrack(track: unknown): FakeSender {
    const sender = new FakeSender(track);
    this.transceivers.push(new FakeTransceiver(sender, "sendrecv", () => this.needNegotiation()));
    this.needNegotiation();
    return sender;
  }

  /** webrtc-pc addTransceiver(): for a kind, or for a track it then sends, with its encodings. */
  addTransceiver(
    trackOrKind: { kind: string } | string,
    init: { direction: string; sendEncodings?: RTCRtpEncodingParameters[] },
  ): FakeTransceiver {
    if (init.sendEncodings !== undefined && this.refuseSendEncodings) {
      throw new DOMException("sendEncodings are not supported", "OperationError");
    }
    const track = typeof trackOrKind === "string" ? null : trackOrKind;
    const kind = track === null ? String(trackOrKind) : track.kind;
    const transceiver = new FakeTransceiver(
      new FakeSender(track, init.sendEncodings),
      init.direction,
      () => this.needNegotiation(),
      kind,
    );
    this.transceivers.push(transceiver);
    this.needNegotiation();
    return transceiver;
  }

  /** webrtc-pc removeTrack(): no track, and the transceiver stops sending. */
  removeTrack(sender: FakeSender): void {
    sender.track = null;
    const transceiver = this.transceivers.find((t) => t.sender === sender);
    if (transceiver?.direction === "sendrecv") transceiver.direction = "recvonly";
    if (transceiver?.direction === "sendonly") transceiver.direction = "inactive";
  }

  getTransceivers(): FakeTransceiver[] {
    return this.transceivers;
  }

  getReceivers(): unknown[] {
    return [];
  }

  async getStats(): Promise<Map<string, unknown>> {
    return this.report;
  }

  configuration: RTCConfiguration = {};
  getConfiguration(): RTCConfiguration {
    return this.configuration;
  }
  setConfiguration(configuration: RTCConfiguration): void {
    this.configuration = configuration;
    this.configurations.push(configuration);
  }

  /** webrtc-pc restartIce(): the next offer carries a new ufrag; survives a rollback. */
  restartIce(): void {
    this.restarts += 1;
    this.restartPending = true;
    this.needNegotiation();
  }

  close(): void {
    this.closed = true;
    this.signalingState = "closed";
    this.connectionState = "closed";
    this.iceConnectionState = "closed";
  }

  /** Move ICE to `state` (and the connection with it), firing the events the browser would. */
  setIceState(state: RTCIceConnectionState): void {
    this.iceConnectionState = state;
    this.oniceconnectionstatechange?.();
    const connection = CONNECTION_STATE[state];
    if (connection === this.connectionState) return;
    this.connectionState = connection;
    this.onconnectionstatechange?.();
  }

  /** Move only connectionState (Chromium can say `failed` there while ICE says `disconnected`). */
  setConnectionState(state: RTCPeerConnectionState): void {
    this.connectionState = state;
    this.onconnectionstatechange?.();
  }

  /**
   * Something changed that needs an offer. negotiationneeded is queued, one event for changes
   * made together, and fires only in "stable" (webrtc-pc, "update the negotiation-needed
   * flag"); like Chromium, it fires again on returning to "stable" while anything is left
   * unnegotiated.
   */
  needNegotiation(): void {
    this.changes += 1;
    this.queueNegotiationNeeded();
  }

  /**
   * Each m-line of a remote offer that is new here gets a transceiver (webrtc-pc, "set the
   * session description").
   */
  private addRemoteMLines(sdp: string | undefined): void {
    for (const { kind, mid } of mLinesOf(sdp)) {
      if (this.transceivers.some((t) => t.mid === mid)) continue;
      const transceiver = new FakeTransceiver(
        new FakeSender(null),
        "recvonly",
        () => this.needNegotiation(),
        kind,
      );
      transceiver.mid = mid;
      this.transceivers.push(transceiver);
    }
  }

  private remoteUfragWhenStable: string | null = null;
  private negotiationNeededQueued = false;

  private enterStable(): void {
    this.signalingState = "stable";
    this.stableLocal = this.localDescription;
    this.stableUfrag = this.ufrag;
    if (this.changes > 0 || this.restartPending) this.queueNegotiationNeeded();
  }

  private queueNegotiationNeeded(): void {
    if (this.negotiationNeededQueued) return; // one event for changes made together
    this.negotiationNeededQueued = true;
    setTimeout(() => {
      this.negotiationNeededQueued = false;
      const needed = this.changes > 0 || this.restartPending;
      if (this.signalingState === "stable" && !this.closed && needed) this.onnegotiationneeded?.();
    }, 0);
  }

  private sdp(type: string): string {
    return [
      "v=0",
      `o=- ${this.sessionId} ${++this.version} IN IP4 127.0.0.1`,
      `s=${this.label}-${type}-${++sdpCounter}`,
      `a=ice-ufrag:${this.ufrag}`,
      "",
    ].join("\r\n");
  }

  private gather(): void {
    const candidate = `candidate:${this.label} 1 udp 1 127.0.0.1 ${1000 + sdpCounter} typ host`;
    const usernameFragment = this.ufrag;
    this.iceGatheringState = "gathering";
    if (this.stallGatherings > 0) {
      this.stallGatherings -= 1;
      return;
    }
    setTimeout(() => {
      if (this.closed) return;
      this.iceGatheringState = "complete";
      this.onicecandidate?.({
        candidate: {
          candidate,
          toJSON: () => ({ candidate, sdpMid: "0", sdpMLineIndex: 0, usernameFragment }),
        },
      });
    }, 0);
  }
}

export const asPc = (fake: FakePeerConnection) => fake as unknown as RTCPeerConnection;

/** Let queued timers and promise callbacks run until things settle (real timers). */
export async function settle(rounds = 30): Promise<void> {
  for (let i = 0; i < rounds; i++) await tick();
}

/**
 * The same under vitest's fake timers: run what is due and what that schedules, a
 * millisecond at a time, until no timer is left (or `maxMs`). Returns the fake time it took:
 * a handful of milliseconds means nothing waited for a real timeout.
 */
export async function settleNow(maxMs = 100): Promise<number> {
  const start = Date.now();
  do await vi.advanceTimersByTimeAsync(1);
  while (vi.getTimerCount() > 0 && Date.now() - start < maxMs);
  return Date.now() - start;
}
