/**
 * One RTCPeerConnection toward one remote member, negotiated with the W3C "perfect
 * negotiation" pattern (webrtc-pc section 10.7): the polite side rolls back its own offer on
 * glare, the impolite side ignores the colliding offer. The server decides who is polite (by
 * member id, so both sides agree whatever order they joined in). Incoming signals are handled
 * strictly in order; ICE candidates that arrive before any remote description are held.
 *
 * The first offer of a connection is always the impolite side's: the polite side does not
 * offer until it has applied a remote description, and the mesh gives the impolite side
 * transceivers so that it always has something to offer. Why, measured in Chromium 156 (two
 * connections in one page, signals through an in-order channel, both sides adding tracks
 * within 10 ms of each other, 500 starts per variant): when the polite side's *first* offer
 * was rolled back, in about 2% of glares its answer's ICE gatherer stayed "gathering" for
 * good and never produced a candidate, so ICE never started on either side (8 of 390 glares;
 * still 4 of 352 without `iceCandidatePoolSize`, 3 of 391 dropping held candidates of the
 * rolled-back ufrag, 2 of 401 sending end-of-candidates: none of those is the cause). With no
 * first offer from the polite side there is no such rollback: 0 of 500, and 0 of 500 through
 * the mesh itself. A rolled-back renegotiation keeps its transport and is fine (50 screen
 * shares started and stopped on both sides at once: all settled, media flowing). The former
 * 5 s "polite side waits for the first offer" and 3 s "stalled: restartIce" timers papered
 * over this; neither is needed now.
 *
 * A call also stayed "new" on both sides, for good, with no rollback at all: the polite
 * side had answered the first offer, and neither side had a candidate pair (one CI run,
 * 2026-12-01), most likely the same stalled gathering; no recovery in src/rtc/recovery.ts
 * starts from "new". A connection that has never connected and whose local description has gathered
 * no candidate in `GATHERING_STALL_MS` therefore restarts ICE, at most
 * `MAX_GATHERING_RESTARTS` times: host candidates come within milliseconds, and a restart
 * gathers afresh.
 *
 * A description that cannot be applied (not a perfect-negotiation ignore) is not waited out:
 * the polite side says `rejected` and waits for a `reset`; the impolite side reports a
 * failure, and the mesh rebuilds the connection and sends `reset` (docs/PROTOCOL.md).
 */
import type { IceCandidate, SessionDescription } from "../protocol";
import type { DescriptionRejected, PeerReset } from "../protocol/generated";
import { iceUfragsOf, sessionIdOf } from "./sdp";

/** What one side sends the other through the server: exactly one of these. */
export interface SignalPayload {
  description?: SessionDescription | null;
  candidate?: IceCandidate | null;
  /** "The description of that type you sent me could not be applied." */
  rejected?: DescriptionRejected | null;
  /** "I replaced my connection toward you; replace yours." Only the impolite side sends it. */
  reset?: PeerReset | null;
}

export type SendSignal = (payload: SignalPayload) => void;

/** Why a connection cannot go on: a description failed here, or ours failed there. */
export type LinkFailure = "description_failed" | "rejected";

/**
 * The remote side's earlier connections, which this one replaced: their SDP session ids
 * and ICE username fragments. Signals still in flight from them are dropped.
 */
export interface RemoteHistory {
  readonly sessions: ReadonlySet<string>;
  readonly ufrags: ReadonlySet<string>;
}

export interface PeerLinkOptions {
  onError?: (error: unknown) => void;
  /** The connection cannot go on as it is (see the module comment). */
  onFailure?: (failure: LinkFailure) => void;
  /** iceConnectionState or connectionState changed. */
  onStateChange?: () => void;
  retired?: RemoteHistory;
}

/** `rejected.message` is at most this long on the wire. */
export const MAX_REJECTED_MESSAGE_CHARS = 256;
const TRAIL_LENGTH = 40;
/** No candidate this long after a local description was set counts as a stalled gathering. */
export const GATHERING_STALL_MS = 4000;
/** Restarts for stalled gatherings, per connection (see the module comment). */
export const MAX_GATHERING_RESTARTS = 2;

export class PeerLink {
  private makingOffer = false;
  private ignoreOffer = false;
  private settingRemoteAnswerPending = false;
  /** This (polite) side said `rejected`: it makes no offer until a reset replaces it. */
  private awaitingReset = false;
  private readonly held: RTCIceCandidateInit[] = [];
  private inbox: Promise<void> = Promise.resolve();
  private closed = false;
  private readonly onError: (error: unknown) => void;
  private readonly onFailure: (failure: LinkFailure) => void;
  private readonly retired: RemoteHistory;
  private readonly sessions = new Set<string>();
  private readonly ufrags = new Set<string>();
  /** Our ICE ufrags that have gathered at least one candidate. */
  private readonly gathered = new Set<string>();
  private gatheringTimer: ReturnType<typeof setTimeout> | null = null;
  private gatheringRestarts = 0;
  /** The connection has reached "connected" at least once. */
  private everConnected = false;
  /** The last negotiation steps, newest last: for diagnostics and tests. */
  readonly trail: string[] = [];

  constructor(
    readonly remoteId: string,
    readonly polite: boolean,
    readonly pc: RTCPeerConnection,
    private readonly send: SendSignal,
    options: PeerLinkOptions = {},
  ) {
    this.onError = options.onError ?? (() => {});
    this.onFailure = options.onFailure ?? (() => {});
    this.retired = options.retired ?? { sessions: new Set(), ufrags: new Set() };
    const onStateChange = options.onStateChange ?? (() => {});
    pc.onnegotiationneeded = () => void this.negotiate();
    pc.onicecandidate = ({ candidate }) => {
      // Trickle ICE (RFC 8838): each candidate goes out as soon as it is gathered. The
      // end-of-candidates event carries no ufrag, so after a rollback or a restart it could
      // end the wrong generation; it is not sent (Chromium does not need it to conclude).
      if (candidate === null || candidate.candidate === "") return;
      const init = candidate.toJSON();
      // A candidate without its ufrag (older browsers) is the current description's.
      const ufrags = init.usernameFragment ? [init.usernameFragment] : this.localUfrags();
      for (const ufrag of ufrags) this.gathered.add(ufrag);
      this.stopWatchingGathering();
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
      onStateChange();
    };
    pc.onconnectionstatechange = () => {
      globalThis.performance?.mark?.(`salon:rtc connection ${pc.connectionState}`);
      if (pc.connectionState === "connected") {
        this.everConnected = true;
        this.stopWatchingGathering(true);
      }
      onStateChange();
    };
  }

  /** Handle a signal from the remote member, after those before it. */
  receive(payload: SignalPayload): Promise<void> {
    if (this.closed) return this.inbox;
    if (this.isStale(payload)) {
      this.note(`stale ${payload.description ? "description" : "candidate"} dropped`);
      return this.inbox;
    }
    this.remember(payload);
    this.inbox = this.inbox
      .then(() => this.handle(payload))
      .catch((error: unknown) => {
        if (!this.closed) this.onError(error);
      });
    return this.inbox;
  }

  /**
   * Restart ICE (webrtc-pc, `restartIce()`): the next offer carries fresh ICE credentials.
   * It survives a rollback, so a restart that meets glare still happens.
   */
  restartIce(): void {
    if (this.closed) return;
    this.note("restartIce");
    this.pc.restartIce();
    // A first offer that never got an answer (lost with a signaling connection) is made again:
    // restartIce() alone waits for "stable", which would never come.
    const pc = this.pc;
    if (!this.polite && pc.signalingState === "have-local-offer" && pc.remoteDescription === null) {
      void this.negotiate();
    }
  }

  /** Everything known about the remote side's connections, for the link that replaces this one. */
  remoteHistory(): RemoteHistory {
    return {
      sessions: new Set([...this.retired.sessions, ...this.sessions]),
      ufrags: new Set([...this.retired.ufrags, ...this.ufrags]),
    };
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.stopWatchingGathering(true);
    this.pc.onnegotiationneeded = null;
    this.pc.onicecandidate = null;
    this.pc.oniceconnectionstatechange = null;
    this.pc.onconnectionstatechange = null;
    this.pc.ontrack = null;
    this.pc.close();
  }

  private note(step: string): void {
    globalThis.performance?.mark?.(`salon:rtc ${step}`);
    this.trail.push(`${step} [${this.pc.signalingState}]`);
    if (this.trail.length > TRAIL_LENGTH) this.trail.shift();
  }

  /** A signal from a remote connection that a reset has replaced. */
  private isStale({ description, candidate }: SignalPayload): boolean {
    const session = sessionIdOf(description?.sdp);
    if (session !== null && this.retired.sessions.has(session)) return true;
    const ufrag = candidate?.usernameFragment;
    return ufrag != null && this.retired.ufrags.has(ufrag);
  }

  /** Note the remote connection's identity, at arrival: even signals never handled count. */
  private remember({ description, candidate }: SignalPayload): void {
    const session = sessionIdOf(description?.sdp);
    if (session !== null) this.sessions.add(session);
    for (const ufrag of iceUfragsOf(description?.sdp)) this.ufrags.add(ufrag);
    if (candidate?.usernameFragment != null) this.ufrags.add(candidate.usernameFragment);
  }

  private async negotiate(): Promise<void> {
    if (this.closed) return;
    this.note("negotiationneeded");
    if (this.polite && this.pc.remoteDescription === null) {
      // See the module comment: the impolite side makes the first offer. Once its offer is
      // answered, the browser fires negotiationneeded again if anything of ours is left
      // unnegotiated (webrtc-pc, "update the negotiation-needed flag" on reaching "stable").
      this.note("the first offer is the impolite side's");
      return;
    }
    // One offer at a time: a second negotiationneeded while ours is being made would send two
    // offers for one answer. The browser fires again once stable if anything is left.
    if (this.awaitingReset || this.makingOffer) return;
    try {
      this.makingOffer = true;
      await this.pc.setLocalDescription(); // implicit createOffer
      this.sendLocalDescription();
    } catch (error) {
      if (!this.closed) this.onError(error);
    } finally {
      this.makingOffer = false;
    }
  }

  private async handle({ description, candidate, rejected }: SignalPayload): Promise<void> {
    if (this.closed) return;
    if (description) await this.handleDescription(description);
    else if (candidate) await this.handleCandidate(candidate);
    else if (rejected) this.handleRejected(rejected);
  }

  private async handleDescription(description: SessionDescription): Promise<void> {
    const pc = this.pc;
    if (description.type === "answer" && pc.signalingState !== "have-local-offer") {
      // No offer of ours is waiting (webrtc-pc 4.4.1.6: an answer then cannot apply): a
      // duplicate, or an answer to an offer that is settled. A peer following the protocol
      // never sends one; it says nothing about this connection, which is left as it is
      // rather than rebuilt.
      this.note("answer without an offer of ours dropped");
      return;
    }
    // webrtc-pc 10.7: an offer collides unless we are stable (or about to be, applying an
    // answer) and not in the middle of making an offer of our own.
    const readyForOffer =
      !this.makingOffer && (pc.signalingState === "stable" || this.settingRemoteAnswerPending);
    const offerCollision = description.type === "offer" && !readyForOffer;
    this.ignoreOffer = !this.polite && offerCollision;
    this.note(`remote ${description.type}${offerCollision ? " (collision)" : ""}`);
    if (this.ignoreOffer) return;
    this.settingRemoteAnswerPending = description.type === "answer";
    try {
      // On the polite side a colliding offer rolls our own back implicitly.
      await pc.setRemoteDescription({ type: description.type, sdp: description.sdp });
    } catch (error) {
      this.failed(description.type, error);
      return;
    } finally {
      this.settingRemoteAnswerPending = false;
    }
    this.awaitingReset = false;
    await this.flushHeld();
    if (description.type === "answer") this.watchGathering(); // our offer's exchange is done
    if (description.type !== "offer" || this.closed) return;
    try {
      await pc.setLocalDescription(); // implicit createAnswer
    } catch (error) {
      this.failed(description.type, error); // we cannot answer their offer: it did not apply
      return;
    }
    this.sendLocalDescription();
  }

  /** Their description did not apply here; see the module comment for who does what. */
  private failed(type: RTCSdpType, error: unknown): void {
    if (this.closed) return;
    this.note(`${type} did not apply`);
    this.onError(error);
    if (this.polite) {
      this.awaitingReset = true;
      this.send({ rejected: { type, message: messageOf(error) } });
    }
    this.onFailure("description_failed");
  }

  private handleRejected(rejected: DescriptionRejected): void {
    this.note(`our ${rejected.type} did not apply there`);
    // Only the impolite side ever resets; a polite side never receives `rejected` from it.
    if (!this.polite) this.onFailure("rejected");
  }

  private async handleCandidate(candidate: IceCandidate): Promise<void> {
    const init: RTCIceCandidateInit = {
      candidate: candidate.candidate,
      sdpMid: candidate.sdpMid ?? null,
      sdpMLineIndex: candidate.sdpMLineIndex ?? null,
      usernameFragment: candidate.usernameFragment ?? null,
    };
    if (this.pc.remoteDescription === null) {
      this.held.push(init);
      return;
    }
    await this.addCandidate(init);
  }

  private async flushHeld(): Promise<void> {
    const current = new Set(iceUfragsOf(this.pc.remoteDescription?.sdp));
    for (const candidate of this.held.splice(0)) {
      // A candidate of an offer we ignored (or that its sender rolled back) names that
      // offer's ufrag; it can never apply, so it is dropped rather than refused.
      const ufrag = candidate.usernameFragment;
      if (ufrag != null && current.size > 0 && !current.has(ufrag)) {
        this.note("held candidate of another description dropped");
        continue;
      }
      await this.addCandidate(candidate);
    }
  }

  private async addCandidate(candidate: RTCIceCandidateInit): Promise<void> {
    try {
      await this.pc.addIceCandidate(candidate);
    } catch (error) {
      this.note("candidate refused");
      // webrtc-pc 10.7: candidates of an ignored offer are expected to fail. A candidate
      // never breaks the connection: at worst ICE fails, and that has its own recovery.
      if (!this.ignoreOffer && !this.closed) this.onError(error);
    }
  }

  private sendLocalDescription(): void {
    const local = this.pc.localDescription;
    if (local === null || this.closed) return;
    this.note(`send ${local.type}`);
    this.send({ description: { type: local.type, sdp: local.sdp } });
    this.watchGathering();
  }

  private localUfrags(): string[] {
    return iceUfragsOf(this.pc.localDescription?.sdp);
  }

  /** Stop the watch when its description has gathered something (or always, `force`). */
  private stopWatchingGathering(force = false): void {
    if (this.gatheringTimer === null) return;
    if (!force && !this.localUfrags().some((u) => this.gathered.has(u))) return;
    clearTimeout(this.gatheringTimer);
    this.gatheringTimer = null;
  }

  /**
   * See the module comment: restart ICE when a first connection's gathering stalls. Only once
   * both descriptions are set: a restart of a first offer whose answer is merely late would
   * make a second offer, and that late answer would then be applied to it.
   */
  private watchGathering(): void {
    if (this.everConnected || this.gatheringTimer !== null) return;
    if (this.gatheringRestarts >= MAX_GATHERING_RESTARTS || this.pc.remoteDescription === null) return;
    const ufrags = this.localUfrags();
    if (ufrags.length === 0 || ufrags.some((u) => this.gathered.has(u))) return;
    this.gatheringTimer = setTimeout(() => {
      this.gatheringTimer = null;
      const current = this.localUfrags();
      if (this.closed || this.everConnected || current.some((u) => this.gathered.has(u))) return;
      if (current.join() !== ufrags.join()) {
        this.watchGathering(); // a newer description gathers: it gets its own time
        return;
      }
      // "complete" with nothing: there is nothing to gather (a relay-only page whose relay
      // refused it, say); a restart would find nothing either.
      if (this.pc.iceGatheringState === "complete") return;
      this.gatheringRestarts += 1;
      this.note(`no candidate in ${GATHERING_STALL_MS} ms: restartIce`);
      this.restartIce();
    }, GATHERING_STALL_MS);
  }
}

function messageOf(error: unknown): string {
  const text = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  return text.slice(0, MAX_REJECTED_MESSAGE_CHARS);
}
