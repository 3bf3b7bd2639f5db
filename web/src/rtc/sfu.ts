/**
 * Media through the SFU (protocol v3): instead of one RTCPeerConnection per member (mesh.ts),
 * two toward the server's SFU. The publisher connection sends this side's microphone, camera
 * and screen share once, however many watch; the subscriber connection receives everyone
 * else's. The page never speaks to the SFU itself: the server relays every description and
 * candidate, and only media flows between the browser and the SFU.
 *
 * - Publisher: this side offers (`sfu_publish`), the server answers (`sfu_answer`). One offer
 *   is out at a time; whatever changes meanwhile goes into the next offer, made once the
 *   answer is in. A refusal that may pass (`sfu_unavailable`, `not_sfu_room`) is offered
 *   again after 1 s, 2 s, 4 s… (at most 10 s; the delays go on across a start, until an
 *   answer applies); an offer with neither answer nor refusal after 15 s was lost, or its
 *   answer was, and is made again. Answers carry no ref, but the server answers in order: the
 *   answers still due to a publisher closed by a start are counted, and dropped when they come.
 * - Subscriber: the server offers (`sfu_offer`: first, then whenever someone starts or stops
 *   publishing), this side answers (`sfu_subscribe`); offers are handled one at a time, in
 *   order. Each offer lists whose media every m-line carries and whether it is a screen
 *   share: that list, not the SDP's stream ids (the SFU's own), says whose tile a track is.
 *   An answer the SFU refused (`sfu_unavailable`) is sent again after 1 s, 2 s and 4 s.
 * - Both trickle their candidates (`sfu_candidate`) and end them with null; the SFU's own
 *   candidates are already in its descriptions.
 * - Connections that do not connect, or fail, and a first offer that does not come, are not
 *   mended here: the server is asked for a new place on the SFU (`sfu_restart`), and its
 *   `room_media` starts everything again (sfuWatchdog.ts says when).
 *
 * The camera is sent in two simulcast layers (RFC 8853; `CAMERA_LAYERS`), of which the SFU
 * forwards to each member the one its tile needs: this side tells it which for every other
 * member (`sfu_quality`, layers.ts). The screen share is one encoding.
 *
 * Switching devices, muting and turning the camera off are `replaceTrack` on the publisher
 * (webrtc-pc 5.2): it sends nothing at all without a track, on any layer, and nothing is
 * renegotiated.
 * Starting or stopping a screen share changes the direction of its own transceiver, which
 * renegotiates; the same transceiver serves every share, so the SDP does not grow an m-line
 * per share.
 */
import type { ClientMessage, IceCandidate, Media, ServerOf, SessionDescription } from "../protocol";
import type { SfuStream } from "../protocol/generated";
import { Emitter } from "../signaling/emitter";
import { LayerRequests } from "./layers";
import { heardLevel } from "./level";
import type { LocalTracks, PeerConnectionFactory, RemotePeer } from "./mesh";
import { nextSlowMs, settled, sfuState, type SfuPath, type SfuState } from "./sfuState";
import { SfuWatchdog } from "./sfuWatchdog";
import { readStats, type PeerStats, type ReportStats, type Stat } from "./stats";

/** What this side sends the server about its SFU media. */
export type SfuSignal = Extract<
  ClientMessage,
  { type: "sfu_publish" | "sfu_subscribe" | "sfu_candidate" | "sfu_quality" | "sfu_restart" }
>;
/** What the server sends this side about it. */
export type SfuServerSignal = ServerOf<"sfu_answer"> | ServerOf<"sfu_offer">;
/** Which of the two connections a candidate belongs to (`sfu_candidate.pc`). */
export type SfuRole = "publisher" | "subscriber";
/** Another member of the room: whose layer to ask for, and whether they send anything. */
export interface SfuMember {
  readonly id: string;
  readonly media: Media;
}

/** The first delay before a refused offer is made again; it doubles up to the most. */
export const PUBLISH_RETRY_FIRST_MS = 1_000;
export const PUBLISH_RETRY_MAX_MS = 10_000;
/**
 * How long an offer waits for its answer (or refusal) before it is made again. The server
 * answers within about 5 s, refusing when the SFU is silent: past this, a message was lost.
 */
export const PUBLISH_ANSWER_MS = 15_000;
/** The first delay before a refused answer is sent again; it doubles with each try. */
export const SUBSCRIBE_RETRY_FIRST_MS = 1_000;
/** How many times a refused answer is sent again before the watchdog has the last word. */
export const SUBSCRIBE_TRIES = 3;
/** Refusals a later offer can get past: the SFU is back, or the room's move to it is through. */
const RETRIED_CODES: ReadonlySet<string> = new Set(["sfu_unavailable", "not_sfu_room", "rate_limited"]);

/**
 * The camera's simulcast encodings (webrtc-pc 5.2 `sendEncodings`), low first: from a 640 × 480
 * capture, 320 × 240 and 640 × 480. `sfu_quality` names them low and high (this client never
 * asks for "medium", which the SFU would replace by the nearest of the two).
 */
export const CAMERA_LAYERS: readonly RTCRtpEncodingParameters[] = [
  // Two, not three: Chromium sends at most two simulcast layers of a 640 × 480 capture (its
  // layer count follows the resolution) and drops the top one of three, so nobody would get
  // the full picture. Listed lowest first ("rid_order" lmh on the server's side).
  { rid: "l", scaleResolutionDownBy: 2, maxBitrate: 400_000 },
  { rid: "h", scaleResolutionDownBy: 1, maxBitrate: 1_500_000 },
];

/** The `ref` of each message this module sends: an `error` naming one is for `refused`. */
const REFS = {
  publish: "sfu-publish",
  subscribe: "sfu-subscribe",
  candidate: "sfu-candidate",
  restart: "sfu-restart",
} as const;
const OUR_REFS: ReadonlySet<unknown> = new Set(Object.values(REFS));
/** `sfu_quality`'s ref is this and the member's id: a refusal says whose layer it was about. */
const QUALITY_REF = "sfu-quality:";
const TRAIL_LENGTH = 40;

type Timer = ReturnType<typeof setTimeout>;

export interface SfuOptions {
  /** Groups received tracks into the stream a tile plays; tests pass a fake. */
  streamFactory?: (tracks: MediaStreamTrack[]) => MediaStream;
  /**
   * Whether the signaling socket is open now. While it is not, what is sent waits in its
   * queue and goes out late, all at once: no restart is asked, no offer is made again for
   * want of an answer. Always open when not given.
   */
  signalingOpen?: () => boolean;
}

interface Publisher {
  readonly pc: RTCPeerConnection;
  /** When it was made: setting up for long is news for the person (sfuState.ts). */
  readonly since: number;
  readonly audio: RTCRtpTransceiver;
  readonly video: RTCRtpTransceiver;
  /** Made by the first screen share, and kept ("inactive") for the next ones. */
  screen: RTCRtpTransceiver | null;
  /** An offer is out (or waits to be made again) and no answer has applied yet. */
  offering: boolean;
  /** Something changed after the offer that is out was made: offer again once answered. */
  stale: boolean;
  /** An answer applied to it: the SFU answers this side, and the connection is watched. */
  answered: boolean;
  /** Makes a refused offer again. */
  retry: Timer | null;
  /** Makes the offer out again when neither its answer nor a refusal came in time. */
  answerWait: Timer | null;
}

interface Subscriber {
  readonly pc: RTCPeerConnection;
  readonly since: number;
  /** What the latest offer said each m-line carries, by `mid`. */
  streams: ReadonlyMap<string, SfuStream>;
  /** Times the SFU refused the latest answer (`sfu_unavailable`), which was sent again. */
  refusals: number;
  /** Sends the refused answer again. */
  retry: Timer | null;
}

/** A stream handed out to a tile, and the tracks it was made of. */
interface HeldStream {
  readonly trackIds: string;
  readonly stream: MediaStream;
}

export class SfuMedia {
  private readonly events = new Emitter<{ change: void }>();
  private readonly streamFactory: (tracks: MediaStreamTrack[]) => MediaStream;
  /** The layer of each other member's video to receive (`sfu_quality`). */
  private readonly layers: LayerRequests;
  /** Asks the server for a new place on the SFU when the connections do not work. */
  private readonly watchdog: SfuWatchdog;
  /** Whether the signaling socket is open now (SfuOptions). */
  private readonly signalingOpen: () => boolean;
  /** Another member of the room sends media: the SFU offers it (once this side has a place). */
  private othersSend = false;
  /** Since when the SFU's first offer is due (sfuState.ts); null when none is. */
  private offerDueSince: number | null = null;
  /** Started again after the SFU lost its state, and not settled since (sfuState.ts). */
  private restarted = false;
  /** Wakes `state` up when a connection setting up turns `slow`. */
  private slowCheck: Timer | null = null;
  /** `sfu_publish` sent and not answered yet (by `sfu_answer`, or an error with its ref). */
  private unanswered = 0;
  /** How many of those were a closed publisher's: their answers are dropped when they come. */
  private orphans = 0;
  /** Offers refused in a row, for the next delay; kept across `start` until one is answered. */
  private refusals = 0;
  private publisher: Publisher | null = null;
  private subscriber: Subscriber | null = null;
  private tracks: LocalTracks = { audio: null, video: null, screen: null };
  private sending = { audio: true, video: true };
  private snapshot: readonly RemotePeer[] = [];
  /** By member and "camera" or "screen": kept while the tracks stay, so a tile keeps playing. */
  private held = new Map<string, HeldStream>();
  private inbox: Promise<void> = Promise.resolve();
  /** Goes up at every start and close: server messages that came before are dropped. */
  private generation = 0;
  private starts = 0;
  /** The last negotiation steps, newest last: for diagnostics (`stats().trail`) and tests. */
  readonly trail: string[] = [];

  constructor(
    private readonly send: (message: SfuSignal) => void,
    private config: RTCConfiguration,
    private readonly factory: PeerConnectionFactory = (c) => new RTCPeerConnection(c),
    options: SfuOptions = {},
  ) {
    this.streamFactory = options.streamFactory ?? ((tracks) => new MediaStream(tracks));
    this.signalingOpen = options.signalingOpen ?? (() => true);
    this.layers = new LayerRequests((member, quality) =>
      this.send({ type: "sfu_quality", member, quality, ref: `${QUALITY_REF}${member}` }),
    );
    this.watchdog = new SfuWatchdog({
      ask: () => this.send({ type: "sfu_restart", ref: REFS.restart }),
      changed: () => this.notify(),
      note: (step) => this.note(step),
      signalingOpen: () => this.signalingOpen(),
    });
  }

  onChange(handler: () => void): () => void {
    return this.events.on("change", handler);
  }

  /** Started and not closed since: the room's media goes through the SFU. */
  get active(): boolean {
    return this.publisher !== null;
  }

  /**
   * The members whose media is received, as an immutable snapshot that changes identity on
   * every change.
   */
  get remote(): readonly RemotePeer[] {
    return this.snapshot;
  }

  /**
   * The state of this side's media path: the subscriber connection's, or the publisher's
   * while nothing is received yet; "new" when not active.
   */
  get connection(): RTCPeerConnectionState {
    return (this.subscriber ?? this.publisher)?.pc.connectionState ?? "new";
  }

  /**
   * How the path to the SFU is doing (sfuState.ts): "off" when not active. The room shows a
   * sentence for the troubled states; `window.__salon.sfuState()` reads it.
   */
  get state(): SfuState {
    return sfuState(this.path(), Date.now());
  }

  /**
   * Start sending to the SFU, or start again from scratch (the server says so after the SFU
   * restarted, or to answer `sfu_restart`): both connections are closed, and a new publisher
   * offers at once. The subscriber is made by the server's first offer. The SFU starts from
   * its defaults too: it is told again which layers to send. Answers still due to the old
   * publisher's offers will be dropped: they would apply to the new one's.
   */
  start(): void {
    const restarting = this.active;
    this.stop();
    this.orphans = this.unanswered;
    this.starts += 1;
    this.note(`start ${this.starts}`);
    this.restarted = restarting;
    this.watchdog.begin();
    const publisher = this.openPublisher();
    this.publisher = publisher;
    this.negotiate(publisher);
    this.layers.start();
    this.changed();
  }

  /** Close both connections and forget everything received (the room is left). */
  close(): void {
    if (!this.active) return; // a subscriber exists only while active
    this.stop();
    this.refusals = 0; // the next room's SFU starts afresh
    this.watchdog.end();
    this.note("closed");
    this.changed();
  }

  /**
   * A message from the server about SFU media; each is handled after those before it. An
   * answer to a closed publisher's offer is dropped on arrival (see `start`).
   */
  receive(message: SfuServerSignal): Promise<void> {
    if (message.type === "sfu_answer" && this.orphanAnswer()) return this.inbox;
    return this.enqueue(() => this.handle(message));
  }

  /**
   * An `error` from the server: true when it is about one of this module's messages (its
   * `ref`), which is then dealt with here and is no news for the person. A refused offer is
   * made again later when the refusal may pass; otherwise the next change offers again. A
   * refused answer is sent again a few times. A refused layer request is made again with the
   * next one. A refused `sfu_restart` is the watchdog's to deal with.
   */
  refused(code: string, ref: string | number | null | undefined): boolean {
    const member = qualityMember(ref);
    if (member === null && !OUR_REFS.has(ref)) return false;
    console.warn(`salon sfu: ${String(ref)} refused (${code})`);
    if (member !== null) this.layers.refused(member);
    else if (ref === REFS.restart) this.watchdog.refused(code);
    else if (ref === REFS.publish) this.publishRefused(code);
    else if (ref === REFS.subscribe && code === "sfu_unavailable") this.resubscribeLater();
    return true;
  }

  /**
   * The signaling socket is open again and the place resumed: a restart held back while it
   * was away is asked now if the connections still do not work.
   */
  signalingResumed(): void {
    this.watchdog.signalingBack();
  }

  /** The signaling socket came back with a new place: nothing sent before will be answered. */
  signalingRenewed(): void {
    this.unanswered = 0;
    this.orphans = 0;
  }

  /**
   * How wide a member's camera tile shows their video (device px; 0: not shown), or null when
   * the tile is gone: while the room is on the SFU, it is asked for the layer that needs
   * (layers.ts).
   */
  showVideo(member: string, width: number | null): void {
    this.layers.shown(member, width);
  }

  /**
   * The other members of the room, now, with what they send: whose layers to ask for, and
   * whether the SFU's offer of their media is due. Listeners are not told: the room reads
   * `state` after this.
   */
  setMembers(members: readonly SfuMember[]): void {
    this.layers.present(members.map((m) => m.id));
    const othersSend = members.some(({ media }) => media.mic || media.camera || media.screen);
    if (othersSend === this.othersSend) return;
    this.othersSend = othersSend;
    this.review();
  }

  /** A member left the room: nothing more is asked about them. */
  forget(member: string): void {
    this.layers.forget(member);
  }

  /** New ICE servers (fresh TURN credentials) for both connections, now and later. */
  setIceServers(iceServers: RTCIceServer[]): void {
    this.config = { ...this.config, iceServers };
    for (const pc of this.connections()) {
      try {
        // Keep what the connection was made with (webrtc-pc 4.4.1.4: some members cannot change).
        pc.setConfiguration({ ...pc.getConfiguration(), iceServers });
      } catch (error) {
        logError(error);
      }
    }
  }

  /** Send this track as the microphone, camera or screen share (null: none). */
  setTrack(kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    this.tracks = { ...this.tracks, [kind]: track };
    const publisher = this.publisher;
    if (publisher === null) return;
    if (kind !== "screen") this.sendTrack(publisher, kind);
    else if (this.attachScreen(publisher, track)) this.negotiate(publisher);
  }

  /** Send the microphone or camera, or send nothing in its place (see the module comment). */
  setSending(kind: "audio" | "video", on: boolean): void {
    if (this.sending[kind] === on) return;
    this.sending = { ...this.sending, [kind]: on };
    if (this.publisher !== null) this.sendTrack(this.publisher, kind);
  }

  /** Current audio level (0..1) heard from a member, from RTP (RFC 6464) levels. */
  audioLevel(id: string): number {
    const subscriber = this.subscriber;
    if (subscriber === null) return 0;
    const receivers = subscriber.pc
      .getTransceivers()
      .filter((t) => {
        const stream = streamOf(subscriber, t);
        return stream?.member === id && stream.kind === "audio";
      })
      .map((t) => t.receiver);
    return heardLevel(receivers);
  }

  /**
   * getStats() numbers per member id, the shape the mesh gives (stats.ts), from one call per
   * connection. What is received from a member is the subscriber's `inbound-rtp` entries of
   * that member's m-lines; what is sent is the publisher's, the same for every member (it is
   * sent once, to the SFU).
   */
  async stats(): Promise<Record<string, PeerStats>> {
    const { publisher, subscriber } = this;
    if (publisher === null || subscriber === null) return {};
    const [received, sent] = await Promise.all([subscriber.pc.getStats(), publisher.pc.getStats()]);
    const outbound = readStats(sent, { inboundTrackId: null, outboundMid: screenMid(publisher) });
    const memberOf = memberOfStat(subscriber);
    const entries = this.snapshot.map(({ id }) => {
      const screen = { inboundTrackId: screenTrackId(subscriber, id), outboundMid: null };
      const inbound = readStats(received, screen, (stat) => memberOf(stat) === id);
      return [id, this.peerStats(subscriber, inbound, outbound)] as const;
    });
    return Object.fromEntries(entries);
  }

  private peerStats(subscriber: Subscriber, inbound: ReportStats, outbound: ReportStats): PeerStats {
    return {
      ...inbound,
      audioBytesSent: outbound.audioBytesSent,
      videoBytesSent: outbound.videoBytesSent,
      cameraOut: outbound.cameraOut,
      screenOut: outbound.screenOut,
      audioCodecOut: outbound.audioCodecOut,
      timestamp: Math.max(inbound.timestamp, outbound.timestamp),
      connection: subscriber.pc.connectionState,
      signaling: subscriber.pc.signalingState,
      trail: [...this.trail],
      iceRestarts: 0,
      // Counters start again with new connections: quality.ts compares only within one.
      rebuilds: this.starts - 1,
    };
  }

  /** Run `step` after everything received before it, unless media starts again or closes first. */
  private enqueue(step: () => Promise<void> | void): Promise<void> {
    const generation = this.generation;
    this.inbox = this.inbox
      .then(() => (generation === this.generation ? step() : undefined))
      .catch((error: unknown) => {
        if (generation === this.generation) logError(error);
      });
    return this.inbox;
  }

  private handle(message: SfuServerSignal): Promise<void> {
    if (!this.active) return Promise.resolve();
    return message.type === "sfu_answer"
      ? this.applyAnswer(message.description)
      : this.applyOffer(message.description, message.streams);
  }

  /**
   * An answer to an `sfu_publish` came (`sfu_answer`, or an `error` with its ref). The server
   * answers a member's messages in order: while a closed publisher's answers are still due,
   * this is one of them, and true says to drop it.
   */
  private orphanAnswer(): boolean {
    this.unanswered = Math.max(0, this.unanswered - 1);
    if (this.orphans === 0) return false;
    this.orphans -= 1;
    this.note("answer to a closed publisher dropped");
    return true;
  }

  /** A refused offer is made again later when the refusal may pass; else the next change offers. */
  private publishRefused(code: string): void {
    if (this.orphanAnswer()) return;
    const publisher = this.publisher;
    if (publisher === null || !publisher.offering) return;
    publisher.answerWait = cancel(publisher.answerWait);
    if (RETRIED_CODES.has(code)) this.retryLater(publisher);
    else publisher.offering = false;
  }

  /** A new publisher connection with its audio and video transceivers, not offered yet. */
  private openPublisher(): Publisher {
    const pc = this.connect("publisher");
    // Both m-lines from the start, even with nothing to send yet: a device that comes later
    // is a replaceTrack, not a renegotiation.
    const publisher: Publisher = {
      pc,
      since: Date.now(),
      audio: pc.addTransceiver("audio", { direction: "sendonly" }),
      video: addCamera(pc),
      screen: null,
      offering: false,
      stale: false,
      answered: false,
      retry: null,
      answerWait: null,
    };
    this.sendTrack(publisher, "audio");
    this.sendTrack(publisher, "video");
    this.attachScreen(publisher, this.tracks.screen); // in the first offer
    return publisher;
  }

  /**
   * A new connection toward the SFU that trickles its candidates and reports its state, to
   * the watchdog too once it watches it.
   */
  private connect(role: SfuRole): RTCPeerConnection {
    const pc = this.factory(this.config);
    pc.onicecandidate = ({ candidate }) => this.trickle(role, candidate);
    pc.onconnectionstatechange = () => {
      globalThis.performance?.mark?.(`salon:sfu ${role} ${pc.connectionState}`);
      this.watchdog.observe(role, pc.connectionState);
      this.changed();
    };
    return pc;
  }

  /**
   * Trickle ICE (RFC 8838): each candidate goes out as soon as it is gathered, and the end of
   * gathering (webrtc-pc, an `icecandidate` event whose candidate is null) as null. An
   * empty candidate string is some browsers' own end-of-candidates mark, not a candidate;
   * the null event follows it.
   */
  private trickle(role: SfuRole, candidate: RTCIceCandidate | null): void {
    this.watchdog.gathered(role);
    if (candidate !== null && candidate.candidate === "") return;
    this.send({
      type: "sfu_candidate",
      pc: role,
      candidate: candidate === null ? null : wireCandidate(candidate.toJSON()),
      ref: REFS.candidate,
    });
  }

  /** What the microphone or camera transceiver sends: the track, or nothing while it is off. */
  private sendTrack(publisher: Publisher, kind: "audio" | "video"): void {
    const track = this.sending[kind] ? this.tracks[kind] : null;
    // Calls are chained in order by the connection (webrtc-pc 5.2), so the last one wins.
    void publisher[kind].sender.replaceTrack(track).catch(logError);
  }

  /**
   * Start, switch or stop the screen share on its own transceiver. True when that needs a new
   * offer: the transceiver is new, or its direction changed. Switching the shared window
   * does not.
   */
  private attachScreen(publisher: Publisher, track: MediaStreamTrack | null): boolean {
    const transceiver = publisher.screen;
    if (transceiver === null) {
      if (track === null) return false;
      publisher.screen = publisher.pc.addTransceiver(track, { direction: "sendonly" });
      return true;
    }
    void transceiver.sender.replaceTrack(track).catch(logError);
    const direction: RTCRtpTransceiverDirection = track === null ? "inactive" : "sendonly";
    if (transceiver.direction === direction) return false;
    transceiver.direction = direction;
    return true;
  }

  /** Offer what the publisher has now; while an offer is out, after its answer. */
  private negotiate(publisher: Publisher): void {
    if (publisher.offering) {
      publisher.stale = true;
      return;
    }
    void this.offer(publisher);
  }

  private async offer(publisher: Publisher): Promise<void> {
    publisher.offering = true;
    publisher.stale = false;
    const pc = publisher.pc;
    try {
      // Implicit createOffer (webrtc-pc, setLocalDescription without a description); in
      // "have-local-offer" too, where it makes a new offer.
      await pc.setLocalDescription();
    } catch (error) {
      if (publisher !== this.publisher) return;
      logError(error);
      this.retryLater(publisher);
      return;
    }
    const local = pc.localDescription;
    if (publisher !== this.publisher || local === null) return;
    this.watchdog.expectCandidates("publisher");
    // The screen's mid: a transceiver has one once an offer that includes it is set.
    const screen = screenMid(publisher);
    this.note(`publish${screen === null ? "" : ` (screen ${screen})`}`);
    this.send({
      type: "sfu_publish",
      description: { type: "offer", sdp: local.sdp },
      screen,
      ref: REFS.publish,
    });
    this.unanswered += 1;
    this.awaitAnswer(publisher);
  }

  /**
   * Make the offer again when neither its answer nor a refusal came within PUBLISH_ANSWER_MS:
   * it, or its answer, was lost. It stays unanswered (its answer may come yet), so that a
   * start drops that answer too. While the signaling socket is away, the wait starts over:
   * the answer may come on resume, and a new offer would only queue up behind the old one.
   */
  private awaitAnswer(publisher: Publisher): void {
    cancel(publisher.answerWait);
    publisher.answerWait = setTimeout(() => {
      publisher.answerWait = null;
      if (publisher !== this.publisher) return;
      if (!this.signalingOpen()) {
        this.awaitAnswer(publisher);
        return;
      }
      this.note(`no answer after ${PUBLISH_ANSWER_MS} ms: publish again`);
      void this.offer(publisher);
    }, PUBLISH_ANSWER_MS);
  }

  private async applyAnswer(description: SessionDescription): Promise<void> {
    const publisher = this.publisher;
    const pc = publisher?.pc;
    if (publisher === null || !publisher.offering || pc?.signalingState !== "have-local-offer") {
      // webrtc-pc, "set the session description": an answer applies only to an offer of ours.
      this.note("answer without an offer dropped");
      return;
    }
    if (description.type !== "answer") return;
    publisher.answerWait = cancel(publisher.answerWait);
    try {
      await pc.setRemoteDescription({ type: "answer", sdp: description.sdp });
    } catch (error) {
      if (publisher !== this.publisher) return;
      logError(error);
      this.retryLater(publisher); // a new offer, for a new answer
      return;
    }
    if (publisher !== this.publisher) return;
    this.note("answer applied");
    // The SFU answers: from now on the connection has a while to connect (not while it refuses).
    this.watchdog.watch("publisher", pc.connectionState);
    publisher.retry = cancel(publisher.retry);
    publisher.answered = true;
    publisher.offering = false;
    this.refusals = 0;
    this.notify(); // no longer "retrying"; the others' media may be due now
    if (publisher.stale) this.negotiate(publisher);
  }

  /** Make a new offer after a delay that doubles with each refusal in a row. */
  private retryLater(publisher: Publisher): void {
    if (publisher.retry !== null) return;
    const delay = Math.min(PUBLISH_RETRY_MAX_MS, PUBLISH_RETRY_FIRST_MS * 2 ** this.refusals);
    this.refusals += 1;
    this.note(`publish again in ${delay} ms`);
    publisher.retry = setTimeout(() => {
      publisher.retry = null;
      if (publisher === this.publisher) void this.offer(publisher);
    }, delay);
    this.notify(); // "retrying" until an answer applies
  }

  /** The server's offer for the subscriber (made by the first one): apply it, then answer. */
  private async applyOffer(description: SessionDescription, streams: readonly SfuStream[]): Promise<void> {
    if (description.type !== "offer") return;
    const subscriber = this.subscriber ?? this.openSubscriber();
    subscriber.retry = cancel(subscriber.retry); // this offer's answer supersedes a refused one
    subscriber.refusals = 0;
    const pc = subscriber.pc;
    this.note(`offer of ${streams.length} streams`);
    await pc.setRemoteDescription({ type: "offer", sdp: description.sdp });
    if (subscriber !== this.subscriber) return;
    // Each new m-line has a transceiver now (webrtc-pc, "set the session description"), and
    // its receiver's track: tiles get them.
    subscriber.streams = new Map(streams.map((stream) => [stream.mid, stream]));
    this.changed();
    await pc.setLocalDescription(); // implicit createAnswer
    if (subscriber !== this.subscriber) return;
    this.watchdog.expectCandidates("subscriber");
    this.sendAnswer(subscriber);
  }

  /** Send the subscriber's answer (its local description): it has a while to connect from now. */
  private sendAnswer(subscriber: Subscriber): void {
    const local = subscriber.pc.localDescription;
    if (local === null) return;
    this.note("subscribe");
    this.send({
      type: "sfu_subscribe",
      description: { type: "answer", sdp: local.sdp },
      ref: REFS.subscribe,
    });
    this.watchdog.watch("subscriber", subscriber.pc.connectionState);
  }

  /**
   * The SFU refused the subscriber's answer (`sfu_unavailable`: nothing changed): send the
   * same answer again after 1 s, 2 s, then 4 s. Past that, the connection's deadline is the
   * watchdog's to act on. An offer that comes meanwhile is answered instead.
   */
  private resubscribeLater(): void {
    const subscriber = this.subscriber;
    if (subscriber === null || subscriber.retry !== null) return;
    if (subscriber.refusals >= SUBSCRIBE_TRIES) {
      this.note("subscribe refused: left to the watchdog");
      return;
    }
    const delay = SUBSCRIBE_RETRY_FIRST_MS * 2 ** subscriber.refusals;
    subscriber.refusals += 1;
    const refusals = subscriber.refusals;
    this.note(`subscribe again in ${delay} ms`);
    subscriber.retry = setTimeout(() => {
      subscriber.retry = null;
      // After the offers that came before: one of them resets `refusals`, and was answered.
      void this.enqueue(() => {
        if (subscriber === this.subscriber && subscriber.refusals === refusals) this.sendAnswer(subscriber);
      });
    }, delay);
  }

  /** The receiving connection, made by the SFU's first offer: it has a while to connect. */
  private openSubscriber(): Subscriber {
    const pc = this.connect("subscriber");
    const subscriber: Subscriber = { pc, since: Date.now(), streams: new Map(), refusals: 0, retry: null };
    this.subscriber = subscriber;
    this.watchdog.watch("subscriber", pc.connectionState);
    return subscriber;
  }

  /** Close both connections; what the server sent for them is dropped. */
  private stop(): void {
    this.generation += 1;
    this.layers.stop();
    this.restarted = false;
    this.offerDueSince = null;
    this.slowCheck = cancel(this.slowCheck);
    const { publisher, subscriber } = this;
    if (publisher !== null) {
      publisher.retry = cancel(publisher.retry);
      publisher.answerWait = cancel(publisher.answerWait);
    }
    if (subscriber !== null) subscriber.retry = cancel(subscriber.retry);
    for (const pc of this.connections()) {
      pc.onicecandidate = null;
      pc.onconnectionstatechange = null;
      pc.close();
    }
    this.publisher = null;
    this.subscriber = null;
  }

  private connections(): RTCPeerConnection[] {
    return [this.publisher?.pc, this.subscriber?.pc].filter((pc) => pc !== undefined);
  }

  private note(step: string): void {
    globalThis.performance?.mark?.(`salon:sfu ${step}`);
    this.trail.push(step);
    if (this.trail.length > TRAIL_LENGTH) this.trail.shift();
  }

  private changed(): void {
    this.snapshot = this.remoteOf(this.subscriber);
    this.notify();
  }

  /** Tell listeners that something changed, the path's state included. */
  private notify(): void {
    this.review();
    this.events.emit("change", undefined);
  }

  /**
   * Take stock of the path: whether the SFU's first offer is due (for the watchdog too),
   * whether it settled, and when it turns `slow` by itself, which no event of its own says:
   * listeners are woken up then.
   */
  private review(): void {
    this.trackOffer();
    const path = this.path();
    if (settled(path)) {
      this.restarted = false; // restored
      this.watchdog.settled();
    }
    this.slowCheck = cancel(this.slowCheck);
    const due = nextSlowMs(path, Date.now());
    if (due !== null) this.slowCheck = setTimeout(() => this.notify(), due);
  }

  /**
   * Note when the SFU's first offer became due, and tell the watchdog. It is due once others
   * send media and the SFU answered this side (while it refuses, it offers nothing either),
   * until the offer makes the subscriber.
   */
  private trackOffer(): void {
    const due = this.subscriber === null && this.othersSend && this.publisher?.answered === true;
    if (due === (this.offerDueSince !== null)) return;
    this.offerDueSince = due ? Date.now() : null;
    this.watchdog.expectOffer(due);
  }

  /** What the path's state is decided from (sfuState.ts). */
  private path(): SfuPath {
    const { publisher, subscriber } = this;
    return {
      publisher: publisher && { state: publisher.pc.connectionState, since: publisher.since },
      subscriber: subscriber && { state: subscriber.pc.connectionState, since: subscriber.since },
      offerDue: this.offerDueSince,
      retrying: this.refusals > 0,
      restarted: this.restarted,
      reconnecting: this.watchdog.reconnecting,
    };
  }

  /** One RemotePeer per member the latest offer lists, with its camera and screen tracks. */
  private remoteOf(subscriber: Subscriber | null): readonly RemotePeer[] {
    const byMember = new Map<string, { camera: MediaStreamTrack[]; screen: MediaStreamTrack[] }>();
    for (const transceiver of subscriber?.pc.getTransceivers() ?? []) {
      const stream = subscriber === null ? undefined : streamOf(subscriber, transceiver);
      if (stream === undefined) continue;
      const tracks = byMember.get(stream.member) ?? { camera: [], screen: [] };
      tracks[stream.screen ? "screen" : "camera"].push(transceiver.receiver.track);
      byMember.set(stream.member, tracks);
    }
    const held = new Map<string, HeldStream>();
    const peers = [...byMember].map(([id, tracks]) => ({
      id,
      polite: false,
      camera: this.streamFor(`${id} camera`, tracks.camera, held),
      screen: this.streamFor(`${id} screen`, tracks.screen, held),
      connection: subscriber?.pc.connectionState ?? "new",
      recovery: null,
    }));
    this.held = held;
    return peers;
  }

  /** The stream of these tracks: the one handed out before when the tracks are the same. */
  private streamFor(
    key: string,
    tracks: MediaStreamTrack[],
    held: Map<string, HeldStream>,
  ): MediaStream | null {
    if (tracks.length === 0) return null;
    const trackIds = tracks.map((track) => track.id).join(" ");
    const before = this.held.get(key);
    const stream = before?.trackIds === trackIds ? before.stream : this.streamFactory(tracks);
    held.set(key, { trackIds, stream });
    return stream;
  }
}

/**
 * The camera's transceiver, sending CAMERA_LAYERS. A browser that cannot (addTransceiver
 * throws) sends one encoding, which the SFU forwards whatever layer is asked for.
 */
function addCamera(pc: RTCPeerConnection): RTCRtpTransceiver {
  try {
    const sendEncodings = CAMERA_LAYERS.map((encoding) => ({ ...encoding }));
    return pc.addTransceiver("video", { direction: "sendonly", sendEncodings });
  } catch (error) {
    logError(error);
    return pc.addTransceiver("video", { direction: "sendonly" });
  }
}

/** What the latest offer says a subscriber's transceiver carries; undefined: nothing. */
function streamOf(subscriber: Subscriber, transceiver: RTCRtpTransceiver): SfuStream | undefined {
  return transceiver.mid === null ? undefined : subscriber.streams.get(transceiver.mid);
}

/**
 * Whose an `inbound-rtp` entry is: by its `mid` (webrtc-stats, RTCInboundRtpStreamStats), or,
 * where the browser does not report that, by its `trackIdentifier` (the receiver's track id).
 */
function memberOfStat(subscriber: Subscriber): (stat: Stat) => string | undefined {
  const midOfTrack = new Map(subscriber.pc.getTransceivers().map((t) => [t.receiver.track.id, t.mid]));
  return (stat) => {
    const mid = typeof stat.mid === "string" ? stat.mid : midOfTrack.get(String(stat.trackIdentifier));
    return mid == null ? undefined : subscriber.streams.get(mid)?.member;
  };
}

/** The id of the track carrying a member's screen share: stats.ts tells it from the camera. */
function screenTrackId(subscriber: Subscriber, member: string): string | null {
  const transceiver = subscriber.pc.getTransceivers().find((t) => {
    const stream = streamOf(subscriber, t);
    return stream?.member === member && stream.screen && stream.kind === "video";
  });
  return transceiver?.receiver.track.id ?? null;
}

/** The member a layer request was about, from its ref; null for any other ref. */
function qualityMember(ref: string | number | null | undefined): string | null {
  return typeof ref === "string" && ref.startsWith(QUALITY_REF) ? ref.slice(QUALITY_REF.length) : null;
}

/** Stop a timer if there is one; null, for the field that held it. */
function cancel(timer: Timer | null): null {
  if (timer !== null) clearTimeout(timer);
  return null;
}

/** The `mid` of the publisher's screen transceiver while it shares (`sfu_publish.screen`). */
function screenMid(publisher: Publisher): string | null {
  const screen = publisher.screen;
  return screen !== null && screen.direction === "sendonly" ? screen.mid : null;
}

function wireCandidate(init: RTCIceCandidateInit): IceCandidate {
  return {
    candidate: init.candidate ?? "",
    sdpMid: init.sdpMid ?? null,
    sdpMLineIndex: init.sdpMLineIndex ?? null,
    usernameFragment: init.usernameFragment ?? null,
  };
}

function logError(error: unknown): void {
  console.warn("salon sfu:", error);
}
