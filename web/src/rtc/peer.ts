/**
 * One RTCPeerConnection toward one remote member, negotiated with the W3C "perfect
 * negotiation" pattern (webrtc-pc section 10.7, example 18): the polite side rolls back its
 * own offer on glare, the impolite side ignores the colliding offer. The server decides who
 * is polite. Incoming signals are handled strictly in order, and ICE candidates that arrive
 * before a remote description are held until one exists.
 */
import type { IceCandidate, SessionDescription } from "../protocol";

/** What one side sends the other through the server: a description or a candidate. */
export interface SignalPayload {
  description?: SessionDescription | null;
  candidate?: IceCandidate | null;
}

export type SendSignal = (payload: SignalPayload) => void;

export class PeerLink {
  private makingOffer = false;
  private ignoreOffer = false;
  private settingRemoteAnswerPending = false;
  private readonly held: RTCIceCandidateInit[] = [];
  private inbox: Promise<void> = Promise.resolve();
  private closed = false;
  /**
   * The polite side lets the impolite side make the first offer, so a new pair does not
   * start with glare; it offers itself only if none arrives in time.
   */
  private awaitingFirstOffer: boolean;
  private firstOfferTimer: ReturnType<typeof setTimeout> | null = null;
  private stallTimer: ReturnType<typeof setTimeout> | null = null;
  /** The last negotiation steps, newest last: for diagnostics and tests. */
  readonly trail: string[] = [];

  constructor(
    readonly remoteId: string,
    readonly polite: boolean,
    readonly pc: RTCPeerConnection,
    private readonly send: SendSignal,
    private readonly onError: (error: unknown) => void = () => {},
    firstOfferWaitMs = 5000,
  ) {
    this.awaitingFirstOffer = polite;
    if (polite) {
      this.firstOfferTimer = setTimeout(() => {
        this.firstOfferTimer = null;
        if (!this.awaitingFirstOffer) return;
        this.awaitingFirstOffer = false;
        if (this.pc.signalingState === "stable" && this.pc.remoteDescription === null) void this.offer();
      }, firstOfferWaitMs);
    }
    pc.onnegotiationneeded = () => void this.offer();
    pc.onicecandidate = ({ candidate }) => {
      // Trickle ICE (RFC 8838): each candidate goes out as soon as it is gathered.
      if (candidate === null || candidate.candidate === "") return;
      const init = candidate.toJSON();
      this.send({
        candidate: {
          candidate: init.candidate ?? "",
          sdpMid: init.sdpMid ?? null,
          sdpMLineIndex: init.sdpMLineIndex ?? null,
          usernameFragment: init.usernameFragment ?? null,
        },
      });
    };
    pc.oniceconnectionstatechange = () => {
      this.note(`ice ${pc.iceConnectionState}`);
      // webrtc-pc 4.4.1.6: restartIce() renegotiates with fresh ICE credentials.
      if (pc.iceConnectionState === "failed") pc.restartIce();
    };
  }

  /** Handle a description or candidate from the remote member, after those before it. */
  receive(payload: SignalPayload): Promise<void> {
    this.inbox = this.inbox.then(() => this.handle(payload)).catch(this.onError);
    return this.inbox;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.firstOfferTimer !== null) clearTimeout(this.firstOfferTimer);
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.ontrack = null;
    this.pc.onconnectionstatechange = null;
    this.pc.close();
  }

  private note(step: string): void {
    globalThis.performance?.mark?.(`salon:rtc ${step}`);
    this.trail.push(`${step} [${this.pc.signalingState}]`);
    if (this.trail.length > 40) this.trail.shift();
  }

  private async offer(): Promise<void> {
    if (this.closed) return;
    this.note("negotiationneeded");
    if (this.awaitingFirstOffer) return; // the answer to their offer will carry our tracks
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription(); // implicit createOffer (webrtc-pc 4.4.1.5)
      this.sendLocalDescription();
    } catch (error) {
      this.onError(error);
    } finally {
      this.makingOffer = false;
    }
  }

  private async handle({ description, candidate }: SignalPayload): Promise<void> {
    if (this.closed) return;
    if (description) {
      await this.handleDescription(description);
    } else if (candidate) {
      await this.handleCandidate({
        candidate: candidate.candidate,
        sdpMid: candidate.sdpMid ?? null,
        sdpMLineIndex: candidate.sdpMLineIndex ?? null,
        usernameFragment: candidate.usernameFragment ?? null,
      });
    }
  }

  private async handleDescription(description: SessionDescription): Promise<void> {
    const pc = this.pc;
    const readyForOffer =
      !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswerPending);
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.ignoreOffer = !this.polite && offerCollision;
    this.note(`remote ${description.type}${offerCollision ? " (collision)" : ""}`);
    if (this.ignoreOffer) return;
    this.settingRemoteAnswerPending = description.type === "answer";
    // On the polite side a colliding offer rolls our own back implicitly (4.4.1.6).
    await pc.setRemoteDescription({ type: description.type, sdp: description.sdp });
    this.settingRemoteAnswerPending = false;
    await this.flushHeld();
    if (description.type === "offer") {
      this.awaitingFirstOffer = false;
      await pc.setLocalDescription(); // implicit createAnswer
      this.sendLocalDescription();
    }
    this.watchForStall();
  }

  /**
   * Negotiation finished but ICE never started (no usable candidates; Chromium can lose
   * them across a rollback): restart ICE, which renegotiates with fresh credentials. Only
   * the impolite side does this, so the two sides do not restart into glare.
   */
  private watchForStall(): void {
    if (this.polite) return;
    if (this.stallTimer !== null) clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      const pc = this.pc;
      if (this.closed || pc.signalingState !== "stable" || pc.connectionState !== "new") return;
      this.note("stalled: restartIce");
      pc.restartIce();
    }, 3000);
  }

  private async handleCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    if (this.pc.remoteDescription === null) {
      this.held.push(candidate);
      return;
    }
    await this.addCandidate(candidate);
  }

  private async flushHeld(): Promise<void> {
    const held = this.held.splice(0);
    for (const candidate of held) await this.addCandidate(candidate);
  }

  private async addCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      this.note("candidate refused");
      // Candidates of an offer we ignored (or rolled back) cannot apply; that is expected.
      if (!this.ignoreOffer) this.onError(error);
    }
  }

  private sendLocalDescription(): void {
    const local = this.pc.localDescription;
    if (local === null || this.closed) return;
    this.note(`send ${local.type}`);
    this.send({ description: { type: local.type, sdp: local.sdp } });
  }
}
