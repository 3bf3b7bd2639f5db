/**
 * A room as this client lives it: the signaling client, the media connections and the local
 * media tied together, with one immutable snapshot the UI renders. Framework-free: React
 * hooks subscribe with `subscribe`/`snapshot`.
 *
 * A room's media is a mesh (one peer connection per member, src/rtc/mesh.ts) until the
 * server says it goes through its SFU (protocol v3: `joined.sfu`, or `room_media` later):
 * then every peer connection of the room is closed, none is made for who joins later, and
 * two connections to the SFU carry everything (src/rtc/sfu.ts). It never goes back while the
 * meeting lasts. Members, chat, hosts and everything else are the same either way; on the SFU,
 * who speaks is what the SFU hears (`talking`), and the SFU is told how large each member's
 * video is shown (`showVideo`, src/rtc/layers.ts).
 *
 * A call outlives its socket (docs/PROTOCOL.md, "Places outlive sockets"): while the client
 * reconnects, the media connections and the local media stay as they are. When the place is
 * resumed, the room is reconciled without tearing anything down; when the place was lost
 * ("renewed"), the session joins the same room again by itself, with new connections.
 */
import type {
  ChatEntry,
  ClientMessage,
  IceServer,
  Joined,
  Media,
  MemberInfo,
  Reaction,
  ServerOf,
  Welcome,
} from "../protocol";
import type { SfuStream } from "../protocol/generated";
import { pageIceTransportPolicy, toRtcIceServers } from "../rtc/ice";
import {
  Mesh,
  type LocalTracks,
  type PeerConnectionFactory,
  type PeerStats,
  type Recovery,
  type RemotePeer,
} from "../rtc/mesh";
import type { LocalMedia, LocalMediaState } from "../rtc/media";
import { SfuMedia } from "../rtc/sfu";
import type { SfuState } from "../rtc/sfuState";
import type { CloseInfo, SignalingClient } from "../signaling/client";
import { Emitter } from "../signaling/emitter";
import { ChatLog, type UnsentChat } from "./chat";
import { HostActions } from "./hostActions";
import { IceRefresh } from "./iceRefresh";
import { NO_CONTROL, reduceControl, type ControlMessage, type RoomControl } from "./hosting";
import { distinctLabels } from "./names";
import { addReaction, expireReactions, nextExpiry, type ShownReaction } from "./reactions";
import {
  anyRecorder,
  isRecorder,
  newestFirst,
  RECORD_PENDING_MS,
  recordingProblem,
  settledBy,
  type Recording,
  type RecordPending,
} from "./recording";

/** How many people who left a room the client still names by their label ("Sam (2)"). */
const MAX_FORMER_LABELS = 64;

/** `waiting`: in the room's lobby until a host lets this side in (`joined`) or not. */
export type RoomPhase = "joining" | "waiting" | "joined" | "left" | "failed";

/** What a join presents besides the room id. */
export interface JoinOptions {
  /** The room's password, when it has one. */
  password?: string;
  /** The key `POST /api/v1/rooms` gave this browser: it makes the creator a host. */
  hostKey?: string | null;
  /** An invitation from a join link the server API minted (`#invite=`). */
  invite?: string | null;
}

/** How the mesh is recovering a peer connection (src/rtc): an ICE restart, a rebuild, or not. */

/** Why this side is no longer in the room although it did not leave. */
export type LostReason = "lost" | "replaced" | "signed_out" | "rejoin_failed";

export interface Participant {
  readonly id: string;
  readonly name: string;
  readonly media: Media;
  readonly camera: MediaStream | null;
  readonly screen: MediaStream | null;
  readonly connection: RTCPeerConnectionState;
  /** Their signaling connection is away; the server keeps their place for a while. */
  readonly reconnecting: boolean;
  /** How the media path is being mended, from the mesh (null when it is fine). */
  readonly recovery: Recovery;
  /** The name as shown: it tells two people of the same name apart ("Sam (2)"). */
  readonly label: string;
  /** Signed in to an account: the name is that account's, which no guest can take. */
  readonly signedIn: boolean;
  readonly host: boolean;
  /** Place among the raised hands (1 is the earliest), null when the hand is down. */
  readonly hand: number | null;
  /** Its media says `recording`: the room shows the Recording badge and marks it. */
  readonly recording: boolean;
  /**
   * The server's own recorder (`MemberInfo.recorder`, set by the server alone): not a
   * person, so it has no tile. A member that merely says it records keeps its tile.
   */
  readonly recorder: boolean;
  /**
   * Earlier connections of the same account whose seat this member took
   * (`member_joined.replaces`, docs/PROTOCOL.md §2.8), oldest first, at most
   * MAX_FORMER_IDS: what was pinned for one of them stays pinned.
   */
  readonly formerIds: readonly string[];
}

/** How many replaced connections a member remembers (Participant.formerIds). */
export const MAX_FORMER_IDS = 8;

export interface RoomProblem {
  code: string;
  message: string;
}

/** Hosts, lock, password, lobby, hands, notes and departure come from src/room/hosting.ts. */
export interface RoomSnapshot extends RoomControl {
  readonly phase: RoomPhase;
  readonly room: string | null;
  readonly isPrivate: boolean;
  readonly selfId: string;
  readonly selfName: string;
  /** This side's name as shown, told apart from others of the same name. */
  readonly selfLabel: string;
  readonly isHost: boolean;
  /** This side's place among the raised hands, null when its hand is down. */
  readonly selfHand: number | null;
  readonly members: readonly Participant[];
  readonly chat: readonly ChatEntry[];
  /** Chat sent that the server has not given back yet, oldest first. */
  readonly unsent: readonly UnsentChat[];
  /** Reactions on screen, oldest first; each leaves after a few seconds (src/room/reactions.ts). */
  readonly reactions: readonly ShownReaction[];
  /** Why joining failed, or the last refused action. */
  readonly problem: RoomProblem | null;
  /** This side's signaling connection is away and being restored (or the room rejoined). */
  readonly reconnecting: boolean;
  /** The room is gone for this side: the connection gave up, was replaced, or rejoining failed. */
  readonly lost: boolean;
  readonly lostReason: LostReason | null;
  /** Someone in the room records it (protocol version 2): everyone shows the badge. */
  readonly recording: boolean;
  /** The room's recordings, newest first; only hosts are told (empty for everyone else). */
  readonly recordings: readonly Recording[];
  /** How the path to the SFU is doing (src/rtc/sfuState.ts); "off" when the room is a mesh. */
  readonly sfu: SfuState;
  /** A start or stop this host asked for that the server has not answered yet. */
  readonly recordPending: RecordPending;
}

interface MemberRecord {
  name: string;
  signedIn: boolean;
  /** Join order in this room: it decides who is "Sam" and who "Sam (2)". */
  seat: number;
  media: Media;
  /** Its media says `recording`. */
  recording: boolean;
  /** The server's recorder (`MemberInfo.recorder`): not a person. */
  recorder: boolean;
  reconnecting: boolean;
  /** Participant.formerIds. */
  formerIds: string[];
  /** Removes a member missing from a snapshot who has not come back within the grace window. */
  expiry: ReturnType<typeof setTimeout> | null;
}

/** How long chat refused over the rate waits before it is sent again (the server allows one every 2 s). */
export const CHAT_RETRY_MS = 2_500;
/** The `ref` prefix of reactions, whose refusals over the rate are not reported. */
const REACTION_REF = "reaction-";
/** The `ref` of `record`, so that its refusal clears the pending start or stop. */
const RECORD_REF = "record";
/** How long to wait for `ice_servers` after asking for fresh ones. */
const ICE_REFRESH_WAIT_MS = 5_000;
const DEFAULT_GRACE_SECONDS = 60;

export class RoomSession {
  readonly mesh: Mesh;
  /** The room's media when it goes through the SFU (`sfu.active`); the mesh has none then. */
  readonly sfu: SfuMedia;
  /** What a host can do; each is sent only while this side is in the room. */
  readonly host = new HostActions((message) => this.act(message));
  private readonly events = new Emitter<{ change: void }>();
  private readonly members = new Map<string, MemberRecord>();
  private readonly unsubscribe: (() => void)[] = [];
  private readonly chat = new ChatLog();
  private current: RoomSnapshot;
  private readonly iceRefresh: IceRefresh;
  private sentMedia = "";
  /** The room asked for, to join again after the place was lost. */
  private target: {
    room: string;
    password: string | undefined;
    hostKey: string | null;
    invite: string | null;
  } | null = null;
  private control: RoomControl = NO_CONTROL;
  private nextSeat = 0;
  private selfSeat = 0;
  /** Labels as last shown, kept for members who left (a note may name them after). */
  private labels = new Map<string, string>();
  private readonly formerLabels = new Map<string, string>();
  /** After a resume: the seq held before the `joined` snapshot that follows (§2.8). */
  private snapshotAfter: number | null = null;
  private rejoining = false;
  private reactionTimer: ReturnType<typeof setTimeout> | null = null;
  private nextReactionKey = 1;
  private nextReactionRef = 1;
  private chatRetry: ReturnType<typeof setTimeout> | null = null;
  private recordTimer: ReturnType<typeof setTimeout> | null = null;
  /** On the SFU: the members it last heard start talking and not stop since. */
  private readonly talkers = new Set<string>();

  constructor(
    private readonly client: SignalingClient,
    private readonly local: LocalMedia,
    factory?: PeerConnectionFactory,
  ) {
    const welcome = client.welcome;
    // The newest credentials: a page open for hours may have refreshed them since its welcome.
    const iceServers = toRtcIceServers(client.iceServers);
    this.iceRefresh = new IceRefresh(client);
    // One transport for everything (RFC 9143): one ICE and DTLS handshake per connection.
    // The pool gathers candidates while the first offer is on its way.
    const config: RTCConfiguration = {
      iceServers,
      // "relay" only with the diagnostic ?ice=relay setting (docs/TURN.md).
      iceTransportPolicy: pageIceTransportPolicy(),
      bundlePolicy: "max-bundle",
      rtcpMuxPolicy: "require",
      iceCandidatePoolSize: 1,
    };
    this.mesh = new Mesh(
      (to, payload) => client.send({ type: "signal", to, ...payload }),
      config,
      factory,
      // ICE restarts fetch fresh TURN credentials first (ice_refresh, docs/PROTOCOL.md §4.1).
      { freshIceServers: () => this.freshIceServers() },
    );
    // No restart is asked while the socket is away: it would wait in the queue (sfuWatchdog.ts).
    this.sfu = new SfuMedia((message) => client.send(message), config, factory, {
      signalingOpen: () => client.state === "open",
    });
    this.current = {
      phase: "joining",
      room: null,
      isPrivate: false,
      selfId: welcome?.id ?? "",
      selfName: welcome?.name ?? "",
      selfLabel: welcome?.name ?? "",
      isHost: false,
      selfHand: null,
      ...NO_CONTROL,
      members: [],
      chat: [],
      unsent: [],
      reactions: [],
      problem: null,
      reconnecting: false,
      lost: false,
      lostReason: null,
      recording: false,
      recordings: [],
      recordPending: null,
      sfu: "off",
    };
    this.listen();
    this.iceRefresh.schedule(client.iceServers);
    const tracks = local.state;
    this.setTrack("audio", tracks.audio);
    this.setTrack("video", tracks.video);
    this.setTrack("screen", tracks.screen);
    this.sendWhatIsOn(tracks);
    installTestHook(this, client);
  }

  get snapshot(): RoomSnapshot {
    return this.current;
  }

  subscribe(handler: () => void): () => void {
    return this.events.on("change", handler);
  }

  /** Ask to join a room by id; the answer is `joined`, `lobby_waiting` or an error. */
  join(room: string, options: JoinOptions = {}): void {
    this.target = {
      room,
      password: options.password,
      hostKey: options.hostKey ?? null,
      invite: options.invite ?? null,
    };
    this.sendJoin();
  }

  /** Leave the room, or stop waiting in its lobby. */
  leave(): void {
    const { phase } = this.current;
    if (phase === "joined" || phase === "waiting") this.client.send({ type: "leave" });
    this.target = null;
    this.closeMedia();
    this.update({ phase: "left", reconnecting: false });
  }

  /**
   * Send a chat message with a fresh client id. While the connection is away it waits, and
   * goes out (with the same id) once the place is back; it stays in `unsent` until delivered.
   */
  sendChat(text: string): boolean {
    if (this.current.phase !== "joined" || text.trim() === "") return false;
    const id = this.chat.draft(text);
    this.update({ unsent: this.chat.unsent });
    // The id doubles as `ref`, so an error about this message names it.
    if (this.client.state === "open" && !this.rejoining)
      this.client.send({ type: "chat", text, id, ref: id });
    return true;
  }

  /** Raise or lower this side's hand. */
  raiseHand(raised: boolean): boolean {
    return this.act({ type: "hand", raised });
  }

  /** Show a reaction to everyone in the room or call (this side sees it when the server echoes it). */
  react(reaction: Reaction): boolean {
    // Over the server's reaction rate the reaction is simply not shown (its echo is what
    // shows it); the refusal is no problem to report (see onError).
    const sent = this.act({ type: "reaction", reaction, ref: `${REACTION_REF}${this.nextReactionRef}` });
    if (sent) this.nextReactionRef += 1;
    return sent;
  }

  /**
   * A host starts or stops the room's recorder (`record {on}`). The button waits for the
   * server: a `recordings` list showing the change, or a refusal (`recording_unavailable`,
   * `not_host`), answers it; already recording (or not) changes nothing and says nothing,
   * so the wait also ends after RECORD_PENDING_MS.
   */
  record(on: boolean): boolean {
    const sent = this.act({ type: "record", on, ref: RECORD_REF });
    if (sent) this.setRecordPending(on ? "start" : "stop");
    return sent;
  }

  /** Forget the last refused action (the person dismissed its message). */
  clearProblem(): void {
    if (this.current.problem !== null) this.update({ problem: null });
  }

  /** Current audio level of a member (0..1); the local level is measured by the UI's meter. */
  audioLevel(id: string): number {
    return this.sfu.active ? this.sfu.audioLevel(id) : this.mesh.audioLevel(id);
  }

  /**
   * On the SFU, the members talking now, as the SFU hears them (`talking`): that, not the
   * levels, says who speaks. Null in a mesh room, where the levels do. Read it when needed
   * (as the levels are); it changes without a snapshot.
   */
  get talking(): ReadonlySet<string> | null {
    return this.sfu.active ? this.talkers : null;
  }

  /**
   * A member's camera tile shows their video `width` device px wide (0: not shown; null: the
   * tile is gone). On the SFU, it decides which simulcast layer of it to receive.
   */
  showVideo(member: string, width: number | null): void {
    this.sfu.showVideo(member, width);
  }

  /** getStats() numbers per member id, from whichever carries the room's media. */
  mediaStats(): Promise<Record<string, PeerStats>> {
    return this.sfu.active ? this.sfu.stats() : this.mesh.stats();
  }

  /** The same, keyed by each member's label: `window.__salon.stats()` for end-to-end tests. */
  async stats(): Promise<Record<string, PeerStats & { name: string }>> {
    const raw = await this.mediaStats();
    const out: Record<string, PeerStats & { name: string }> = {};
    for (const [id, stat] of Object.entries(raw)) {
      // Keyed by the label, so two people called "Sam" are two entries ("Sam", "Sam (2)").
      const name = this.labels.get(id) ?? this.members.get(id)?.name ?? id;
      out[name] = { ...stat, name };
    }
    return out;
  }

  /**
   * Fresh ICE servers (new TURN credentials) from the server, for an ICE restart or a
   * rebuilt connection; null when the server does not answer in time.
   */
  freshIceServers(): Promise<RTCIceServer[] | null> {
    // An ICE restart is coming: media trouble may be a changed network, which leaves the
    // signaling socket dead without a close. Check it now, so that the restart's offer goes
    // out on a resumed socket within seconds rather than after the dead-peer timeout.
    this.client.probe();
    return new Promise((resolve) => {
      if (this.client.state !== "open") {
        resolve(null);
        return;
      }
      const timer = setTimeout(() => {
        off();
        resolve(null);
      }, ICE_REFRESH_WAIT_MS);
      // The `ice_servers` handler in listen() applies them to the connections and reschedules.
      const off = this.client.on("ice_servers", (m) => {
        clearTimeout(timer);
        off();
        resolve(toRtcIceServers(m.ice_servers));
      });
      this.client.send({ type: "ice_refresh" });
    });
  }

  /** Stop listening and close every connection (the signaling client stays open). */
  dispose(): void {
    this.iceRefresh.stop();
    if (this.reactionTimer !== null) clearTimeout(this.reactionTimer);
    this.reactionTimer = null;
    if (this.chatRetry !== null) clearTimeout(this.chatRetry);
    this.chatRetry = null;
    this.setRecordPending(null);
    for (const off of this.unsubscribe.splice(0)) off();
    this.clearMembers();
    this.closeMedia();
  }

  /** Send an action that only makes sense from inside the room. */
  /** Send the unacknowledged chat again after CHAT_RETRY_MS, in order (same ids: once each). */
  private resendChatLater(): void {
    if (this.chatRetry !== null) return;
    this.chatRetry = setTimeout(() => {
      this.chatRetry = null;
      if (this.current.phase !== "joined" || this.client.state !== "open" || this.rejoining) return;
      for (const { id, text } of this.chat.unsent) this.client.send({ type: "chat", text, id, ref: id });
    }, CHAT_RETRY_MS);
  }

  private act(message: ClientMessage): boolean {
    if (this.current.phase !== "joined") return false;
    return this.client.send(message);
  }

  private listen(): void {
    const c = this.client;
    const apply = (m: ControlMessage) => this.apply(m);
    this.unsubscribe.push(
      c.on("room_state", apply),
      c.on("hands", apply),
      c.on("room_event", apply),
      // The Record button waits for this list (not for `room_event`, which may come first).
      c.on("recordings", (m) => {
        // Only hosts are sent it; it may come just before the `room_state` that says so.
        if (m.room !== this.current.room) return;
        const recordings = newestFirst(m.recordings);
        if (settledBy(this.current.recordPending, recordings)) this.setRecordPending(null);
        this.update({ recordings });
      }),
      c.on("lobby", apply),
      c.on("muted", (m) => this.onMuted(m)),
      c.on("lobby_waiting", () => this.onWaiting()),
      c.on("lobby_denied", (m) => {
        this.apply(m);
        this.closeMedia();
        this.update({ phase: "left", reconnecting: false });
      }),
      c.on("joined", (m) => this.onJoined(m)),
      // A member_joined for a known id is a member back after the server lost its state.
      c.on("member_joined", (m) => {
        if (typeof m.replaces === "string") this.replaceMember(m.replaces, m.member);
        else this.memberBack(m.member);
      }),
      c.on("member_resumed", (m) => this.memberBack(m.member)),
      c.on("member_reconnecting", (m) => {
        const member = this.members.get(m.id);
        if (member === undefined) return;
        member.reconnecting = true; // keep its peer connection: media may well still flow
        this.refresh();
      }),
      c.on("member_left", (m) => this.removeMember(m.id)),
      c.on("signal", (m) => {
        // A room on the SFU has no peer connection: a signal sent before it moved is for
        // one that is closed.
        if (!this.sfu.active) void this.mesh.receive(m.from, m);
      }),
      c.on("room_media", (m) => this.onRoomMedia(m)),
      c.on("talking", (m) => this.onTalking(m)),
      c.on("sfu_answer", (m) => void this.sfu.receive(m)),
      c.on("sfu_offer", (m) => {
        this.hushSilent(m.streams);
        void this.sfu.receive(m);
      }),
      c.on("ice_servers", (m) => this.setIceServers(m.ice_servers)),
      c.on("media", (m) => {
        const member = this.members.get(m.from);
        if (member === undefined) return;
        member.media = { mic: m.mic, camera: m.camera, screen: m.screen };
        member.recording = isRecorder(m);
        this.refresh();
      }),
      c.on("chat", (m) => {
        // A gap in seq means frames were lost on the way (docs/PROTOCOL.md, chat): catch up.
        if (m.seq > this.chat.lastSeq + 1 && this.current.phase === "joined")
          this.client.send({ type: "history", since: this.chat.lastSeq });
        this.addChat([m]);
      }),
      c.on("history", (m) => {
        this.addChat(m.messages);
        const last = m.messages.at(-1);
        if (m.more && last !== undefined) this.client.send({ type: "history", since: last.seq });
      }),
      c.on("reaction", (m) => this.onReaction(m.from, m.reaction)),
      c.on("left", (m) => {
        this.apply(m);
        this.closeMedia();
        this.update({ phase: "left" });
      }),
      c.on("error", (m) => this.onError(m.code, m.message, m.ref)),
      c.onReconnecting(() => this.update({ reconnecting: true })),
      c.onResumed((w) => this.onResumed(w)),
      c.onRenewed((w) => this.onRenewed(w)),
      c.onClose((info) => this.onClosed(info)),
      this.mesh.onChange(() => this.refresh()),
      this.sfu.onChange(() => this.refresh()),
      this.local.onTrack((change) => this.setTrack(change.kind, change.track)),
      this.local.onChange((state) => {
        this.sendWhatIsOn(state);
        this.announce(state);
      }),
    );
  }

  private onError(code: string, message: string, ref: string | number | null): void {
    // About SFU media (its refs): dealt with there, retried when that can help.
    if (this.sfu.refused(code, ref)) return;
    // A signal to someone who just left is refused; that is not news for the person.
    if (code === "no_such_member") return;
    // Reactions over the rate are dropped by the server; nothing was lost worth a banner.
    if (code === "rate_limited" && typeof ref === "string" && ref.startsWith(REACTION_REF)) return;
    // A message over the chat rate (docs/PROTOCOL.md §4.3), or one the server could not store
    // (its database unavailable, §6.1: try again later; the same id is never stored twice),
    // stays "Sending…" and goes again.
    const later = code === "rate_limited" || code === "store_unavailable";
    if (later && typeof ref === "string" && this.chat.isWaiting(ref)) {
      this.resendChatLater();
      return;
    }
    // A join sent again while the knock still stands (after a reconnect): it stands.
    if (code === "already_joined" && this.current.phase === "waiting") return;
    if (ref === RECORD_REF) {
      this.setRecordPending(null);
      this.update({ problem: { code, message: recordingProblem(code, message) ?? message } });
      return;
    }
    if (typeof ref === "string" && this.chat.drop(ref)) this.update({ unsent: this.chat.unsent });
    if (this.rejoining) {
      this.rejoining = false;
      this.closeMedia();
      this.update({
        problem: { code, message },
        reconnecting: false,
        lost: true,
        lostReason: "rejoin_failed",
      });
      return;
    }
    const failed = this.current.phase === "joining";
    this.update({ problem: { code, message }, ...(failed ? { phase: "failed" } : {}) });
  }

  private onClosed(info: CloseInfo): void {
    const inRoom = this.current.phase === "joined" || this.current.phase === "waiting" || this.rejoining;
    this.rejoining = false;
    if (info.expected || !inRoom) {
      this.update({ reconnecting: false });
      return;
    }
    this.closeMedia();
    this.update({
      reconnecting: false,
      lost: true,
      lostReason: info.cause === "replaced" || info.cause === "signed_out" ? info.cause : "lost",
    });
  }

  /** The place is back (same id). The room is as it was, or a snapshot follows. */
  private onResumed(welcome: Welcome): void {
    this.renewIce(welcome);
    this.update({ selfId: welcome.id, selfName: welcome.name, reconnecting: this.rejoining });
    // After what was queued went out: a restart held back meanwhile may be asked now.
    this.sfu.signalingResumed();
    const resumed = welcome.resumed ?? null;
    if (resumed === null) return;
    // A `talking: false` may be among what was missed: nobody is known to talk any more.
    if (resumed.missed) this.talkers.clear();
    const { phase, room } = this.current;
    // A direct call's room has no target: the server seated us in it, nothing to join again.
    const target = this.target;
    if (target !== null && (phase === "joining" || this.rejoining)) {
      // The join may have been lost with the socket; if the place is in the room, `joined`
      // is among what follows.
      if (resumed.room !== target.room) this.sendJoin();
      return;
    }
    if (target !== null && phase === "waiting") {
      // The knock is not in a rebuilt place's token, and an admission or a denial may be
      // among what was missed: knock again (a knock that stands answers already_joined).
      if (resumed.missed && resumed.room !== target.room) this.sendJoin();
      return;
    }
    if (phase !== "joined" || room === null) return;
    if (resumed.room !== room) {
      // The room was full or gone when the place was rebuilt.
      this.placeLostRoom();
    } else {
      // A `joined` snapshot follows what was kept (docs/PROTOCOL.md §2.8): reconcile with it.
      this.snapshotAfter = this.chat.lastSeq;
    }
  }

  /** A new place under the same name: the old one's room and peers are gone. */
  private onRenewed(welcome: Welcome): void {
    this.renewIce(welcome);
    this.sfu.signalingRenewed();
    this.snapshotAfter = null;
    this.update({ selfId: welcome.id, selfName: welcome.name, reconnecting: false });
    // A new place has no knock either: knock again.
    const { phase } = this.current;
    if ((phase === "joining" || phase === "waiting") && this.target !== null) this.sendJoin();
    else if (this.current.phase === "joined") this.placeLostRoom(); // a call's room: over
  }

  /** Join the same room again as a new member, with new peer connections. */
  private placeLostRoom(): void {
    this.closeMedia();
    this.clearMembers();
    if (this.current.isPrivate) {
      // A direct call's room cannot be joined again: the call is over (CallSession says so).
      this.update({ phase: "left", members: [], reconnecting: false });
      return;
    }
    this.rejoining = true;
    this.update({ members: [], reconnecting: true });
    this.sendJoin();
  }

  private sendJoin(): void {
    const target = this.target;
    if (target === null) return;
    this.client.send({
      type: "join",
      room: target.room,
      ...(target.password ? { password: target.password } : {}),
      ...(target.hostKey ? { host_key: target.hostKey } : {}),
      ...(target.invite ? { invite: target.invite } : {}),
      media: this.mediaState(),
    });
  }

  private onJoined(joined: Joined): void {
    const heldSeq = this.chat.lastSeq;
    const sameRoom = joined.room === this.current.room;
    if (this.snapshotAfter !== null && sameRoom && this.current.phase === "joined") {
      const since = this.snapshotAfter;
      this.snapshotAfter = null;
      this.reconcile(joined, since);
      return;
    }
    const rejoined = this.rejoining && sameRoom;
    this.rejoining = false;
    this.clearMembers();
    this.nextSeat = 0;
    if (!sameRoom) this.chat.reset();
    this.chat.skipTo(joined.last_seq - joined.history.length);
    this.setRecordPending(null);
    // Before the members: a room on the SFU makes no peer connection to them.
    this.routeMedia(joined.sfu === true, sameRoom);
    this.update({
      phase: "joined",
      room: joined.room,
      isPrivate: joined.private,
      problem: null,
      reconnecting: false,
      lost: false,
      lostReason: null,
      // A host hears of the room's recordings right after `joined` (when there are any).
      ...(sameRoom ? {} : { recordings: [] }),
    });
    this.sentMedia = "";
    this.announce(this.local.state);
    this.addChat(joined.history);
    // The server lists members in the order they took their seats; this side came last.
    for (const member of joined.members) this.addMember(member);
    this.selfSeat = this.nextSeat++;
    this.apply(joined); // refreshes
    if (rejoined) this.catchUp(heldSeq, new Set()); // new peer connections: nothing to restart
  }

  /**
   * The room after a resume (its snapshot): keep every peer connection that is still wanted,
   * add who is new, and give who is missing the grace window to come back.
   */
  private reconcile(joined: Joined, heldSeq: number): void {
    const known = new Set(this.members.keys());
    const listed = new Set(joined.members.map((m) => m.id));
    // The server's word on the media path: a `room_media` may have been lost with the socket,
    // and a place rebuilt after a server restart may be in a room that is a mesh again.
    this.routeMedia(joined.sfu === true, true);
    for (const member of joined.members) this.memberBack(member);
    const graceMs = (this.client.welcome?.limits.resume_grace_seconds ?? DEFAULT_GRACE_SECONDS) * 1000;
    for (const [id, record] of this.members) {
      if (listed.has(id) || record.expiry !== null) continue;
      record.reconnecting = true;
      record.expiry = setTimeout(() => this.removeMember(id), graceMs);
    }
    this.update({ isPrivate: joined.private, problem: null });
    this.sentMedia = ""; // a place rebuilt after a server restart does not know it
    this.announce(this.local.state);
    this.addChat(joined.history);
    this.apply(joined); // refreshes
    this.catchUp(heldSeq, known);
  }

  /** After the place came back: what was missed, what was not delivered, stalled media. */
  private catchUp(heldSeq: number, known: ReadonlySet<string>): void {
    this.client.send({ type: "history", since: heldSeq });
    for (const { id, text } of this.chat.unsent) this.client.send({ type: "chat", text, id, ref: id });
    // Signals sent or received while away may be lost; an ICE restart renegotiates. That
    // includes a connection still "new": its first offer may be what was lost (the impolite
    // side's restartIce sends it again). Connections the snapshot just made are negotiating.
    // Mesh connections only: both SFU connections are kept as they are (mesh.remote is empty
    // while the room is on the SFU).
    for (const peer of this.mesh.remote) {
      if (known.has(peer.id) && peer.connection !== "connected") this.mesh.restartIce(peer.id);
    }
  }

  private renewIce(welcome: Welcome): void {
    this.setIceServers(welcome.ice_servers);
  }

  /** New ICE servers (fresh TURN credentials) for every media connection, now and later. */
  private setIceServers(servers: readonly IceServer[]): void {
    const iceServers = toRtcIceServers(servers);
    this.mesh.setIceServers(iceServers);
    this.sfu.setIceServers(iceServers);
    this.iceRefresh.schedule(servers);
  }

  /**
   * The media path the server gives the room (`joined.sfu`): the SFU or the mesh. SFU media
   * under way for this room goes on (a resume's snapshot, the same room's `joined` again).
   */
  private routeMedia(sfu: boolean, sameRoom: boolean): void {
    if (!sfu || !sameRoom) this.sfu.close();
    if (sfu && !this.sfu.active) this.moveToSfu();
  }

  /**
   * `room_media`: the room moved to the SFU, or (already on it) the SFU restarted, or the
   * server made this side a new place there (`sfu_restart`, src/rtc/sfuWatchdog.ts).
   */
  private onRoomMedia(message: ServerOf<"room_media">): void {
    if (!message.sfu || message.room !== this.current.room || this.current.phase !== "joined") return;
    // Already on the SFU: its state for this side is gone, so SFU media starts from scratch.
    if (this.sfu.active) this.startSfu();
    else this.moveToSfu();
  }

  /** The room's media goes through the SFU from now on: every peer connection closes. */
  private moveToSfu(): void {
    this.mesh.close();
    this.startSfu();
  }

  /** SFU media from scratch: what the SFU heard before is forgotten with its state. */
  private startSfu(): void {
    this.talkers.clear();
    this.sfu.start();
  }

  /** `talking`: the SFU heard a member of the room start or stop talking. */
  private onTalking(message: ServerOf<"talking">): void {
    const { member, talking } = message;
    if (message.room !== this.current.room || !this.sfu.active || !this.members.has(member)) return;
    if (talking) this.talkers.add(member);
    else this.talkers.delete(member);
  }

  /**
   * The SFU's offer lists everyone whose media it forwards: a member with no audio in it is
   * not talking. Janus says nothing when a talking publisher goes away, so without this a
   * highlight would stay on.
   */
  private hushSilent(streams: readonly SfuStream[]): void {
    const heard = new Set(streams.filter((s) => s.kind === "audio").map((s) => s.member));
    for (const member of this.talkers) if (!heard.has(member)) this.talkers.delete(member);
  }

  /** Close every media connection of the room, the mesh's and the SFU's. */
  private closeMedia(): void {
    this.mesh.close();
    this.sfu.close();
  }

  /**
   * Send this local track. Both the mesh and the SFU media keep it, so that whichever carries
   * the room's media next has it; only the one in use has connections to send it on.
   */
  private setTrack(kind: keyof LocalTracks, track: MediaStreamTrack | null): void {
    this.mesh.setTrack(kind, track);
    this.sfu.setTrack(kind, track);
  }

  /** Take in a message about the room's roles and protections, and show the result. */
  private apply(message: ControlMessage): void {
    this.control = reduceControl(this.control, message, {
      selfId: this.current.selfId,
      now: Date.now(),
      nameOf: (id, given) =>
        (id === null ? null : (this.labels.get(id) ?? this.formerLabels.get(id))) ?? given,
    });
    this.refresh();
  }

  /** A host turned off this side's mic or camera: do what the button does, and say so. */
  private onMuted(message: ServerOf<"muted">): void {
    this.apply(message);
    if (this.current.phase !== "joined") return;
    // The same path as the person's own button: the track stops, `media` goes out
    // (announce, through the local media's change event), the button shows it off.
    if (message.kind === "mic") this.local.setMicOn(false);
    else this.local.setCameraOn(false);
  }

  /** The server put this side in the room's lobby: it waits for a host. */
  private onWaiting(): void {
    this.rejoining = false;
    this.closeMedia();
    this.clearMembers();
    this.control = { ...this.control, departure: null };
    this.update({ phase: "waiting", problem: null, reconnecting: false, lost: false, lostReason: null });
    this.refresh();
  }

  private addMember(member: MemberInfo, seat: number = this.nextSeat++): void {
    this.members.set(member.id, {
      name: member.name,
      signedIn: member.signed_in,
      seat,
      media: { mic: member.media.mic, camera: member.media.camera, screen: member.media.screen },
      recording: isRecorder(member.media),
      recorder: member.recorder === true,
      reconnecting: false,
      formerIds: [],
      expiry: null,
    });
    // On the SFU there is no peer connection to make, whose change would refresh the room.
    if (this.sfu.active) this.refresh();
    else this.mesh.add(member.id, member.polite);
  }

  /** A member resumed (or is listed again): a known one keeps its peer connection. */
  private memberBack(member: MemberInfo): void {
    const record = this.members.get(member.id);
    if (record === undefined) {
      this.addMember(member);
      return;
    }
    if (record.expiry !== null) clearTimeout(record.expiry);
    record.expiry = null;
    record.name = member.name;
    record.signedIn = member.signed_in;
    record.media = { mic: member.media.mic, camera: member.media.camera, screen: member.media.screen };
    record.recording = isRecorder(member.media);
    record.recorder = member.recorder === true;
    record.reconnecting = false;
    if (!this.sfu.active && !this.mesh.has(member.id)) this.mesh.add(member.id, member.polite);
    this.refresh();
  }

  /**
   * The same person signed in again elsewhere and took `old`'s place (`member_joined.replaces`,
   * docs/PROTOCOL.md §2.8): the newcomer takes its seat and its place in the order, so the room
   * shows one tile for them throughout, where it was.
   */
  private replaceMember(old: string, member: MemberInfo): void {
    const record = this.members.get(old);
    if (record === undefined || this.members.has(member.id)) {
      const heir = this.members.get(member.id);
      if (record !== undefined && heir !== undefined)
        heir.formerIds = [...heir.formerIds, ...record.formerIds, old].slice(-MAX_FORMER_IDS);
      this.removeMember(old);
      this.memberBack(member);
      return;
    }
    const order = [...this.members.keys()].map((id) => (id === old ? member.id : id));
    this.removeMember(old);
    this.addMember(member, record.seat);
    const heir = this.members.get(member.id);
    if (heir !== undefined) heir.formerIds = [...record.formerIds, old].slice(-MAX_FORMER_IDS);
    const records = new Map(this.members);
    this.members.clear();
    for (const id of order) {
      const kept = records.get(id);
      if (kept !== undefined) this.members.set(id, kept);
    }
    this.refresh();
  }

  private removeMember(id: string): void {
    const label = this.labels.get(id);
    if (label !== undefined) {
      this.formerLabels.set(id, label);
      // A long meeting sees many people come and go: keep the most recent ones only.
      if (this.formerLabels.size > MAX_FORMER_LABELS) {
        const oldest = this.formerLabels.keys().next().value;
        if (oldest !== undefined) this.formerLabels.delete(oldest);
      }
    }
    const record = this.members.get(id);
    if (record?.expiry) clearTimeout(record.expiry);
    this.members.delete(id);
    this.talkers.delete(id);
    this.sfu.forget(id);
    this.mesh.remove(id); // refreshes through the mesh's change event
    this.refresh();
  }

  private clearMembers(): void {
    this.formerLabels.clear(); // labels of people who left: needed only until the next snapshot
    for (const record of this.members.values()) if (record.expiry !== null) clearTimeout(record.expiry);
    this.members.clear();
    this.talkers.clear();
  }

  /** A member (this side too) reacted: show it for a few seconds. */
  private onReaction(from: string, reaction: Reaction): void {
    const at = Date.now();
    const shown = { key: this.nextReactionKey++, from, reaction, at };
    this.update({ reactions: addReaction(this.current.reactions, shown) });
    this.scheduleReactionExpiry();
  }

  /** Take reactions off the screen as their time is up, one timer at a time. */
  private scheduleReactionExpiry(): void {
    if (this.reactionTimer !== null) clearTimeout(this.reactionTimer);
    this.reactionTimer = null;
    const next = nextExpiry(this.current.reactions);
    if (next === null) return;
    this.reactionTimer = setTimeout(
      () => {
        this.reactionTimer = null;
        const kept = expireReactions(this.current.reactions, Date.now());
        if (kept !== this.current.reactions) this.update({ reactions: kept });
        this.scheduleReactionExpiry();
      },
      Math.max(0, next - Date.now()),
    );
  }

  private addChat(entries: readonly ChatEntry[]): void {
    if (this.chat.add(entries)) this.update({ chat: this.chat.entries, unsent: this.chat.unsent });
  }

  /** A muted microphone or a camera turned off sends nothing at all (see Mesh.setSending). */
  private sendWhatIsOn(state: LocalMediaState): void {
    for (const media of [this.mesh, this.sfu]) {
      media.setSending("audio", state.micOn);
      media.setSending("video", state.cameraOn);
    }
  }

  /** Tell the room what this side sends, when it changed. */
  private announce(state: LocalMediaState): void {
    if (this.current.phase !== "joined") return;
    const media = this.mediaStateOf(state);
    const key = JSON.stringify(media);
    if (key === this.sentMedia) return;
    this.sentMedia = key;
    this.client.send({ type: "media", ...media });
  }

  private mediaState(): Media {
    return this.mediaStateOf(this.local.state);
  }

  private mediaStateOf(state: LocalMediaState): Media {
    return {
      mic: state.micOn && state.audio !== null,
      camera: state.cameraOn && state.video !== null,
      screen: state.screen !== null,
    };
  }

  private refresh(): void {
    const onSfu = this.sfu.active;
    const remote = onSfu ? this.sfu.remote : this.mesh.remote;
    const peers = new Map<string, RemotePeer>(remote.map((p) => [p.id, p]));
    // On the SFU one connection receives everyone: a member who sends nothing has no stream
    // on it, and is as connected as this side's path to the SFU.
    const unseen: RTCPeerConnectionState = onSfu ? this.sfu.connection : "new";
    this.sfu.setMembers([...this.members].map(([id, record]) => ({ id, media: record.media })));
    const { selfId, selfName } = this.current;
    const control = this.control;
    const seated = [
      { id: selfId, name: selfName, seat: this.selfSeat },
      ...[...this.members].map(([id, r]) => ({ id, name: r.name, seat: r.seat })),
    ].sort((a, b) => a.seat - b.seat);
    this.labels = distinctLabels(seated);
    const hosts = new Set(control.hosts);
    const handOf = (id: string) => {
      const at = control.hands.indexOf(id);
      return at < 0 ? null : at + 1;
    };
    const members: Participant[] = [];
    for (const [id, record] of this.members) {
      const peer = peers.get(id);
      members.push({
        id,
        name: record.name,
        media: record.media,
        camera: peer?.camera ?? null,
        screen: peer?.screen ?? null,
        connection: peer?.connection ?? unseen,
        reconnecting: record.reconnecting,
        recovery: peer?.recovery ?? null,
        label: this.labels.get(id) ?? record.name,
        signedIn: record.signedIn,
        host: hosts.has(id),
        hand: handOf(id),
        recording: record.recording,
        recorder: record.recorder,
        formerIds: record.formerIds,
      });
    }
    const isHost = hosts.has(selfId);
    this.update({
      ...control,
      members,
      selfLabel: this.labels.get(selfId) ?? selfName,
      isHost,
      selfHand: handOf(selfId),
      recording: anyRecorder(members),
      sfu: this.sfu.state,
      // Download links are for hosts: a host who is no longer one forgets them.
      ...(this.current.isHost && !isHost ? { recordings: [], recordPending: null } : {}),
    });
  }

  /** Wait for the server's answer to a start or stop, at most RECORD_PENDING_MS. */
  private setRecordPending(pending: RecordPending): void {
    if (this.recordTimer !== null) clearTimeout(this.recordTimer);
    this.recordTimer = null;
    if (pending !== null) {
      this.recordTimer = setTimeout(() => {
        this.recordTimer = null;
        this.update({ recordPending: null });
      }, RECORD_PENDING_MS);
    }
    if (this.current.recordPending !== pending) this.update({ recordPending: pending });
  }

  private update(patch: Partial<RoomSnapshot>): void {
    this.current = { ...this.current, ...patch };
    this.events.emit("change", undefined);
  }
}

/**
 * `window.__salon`, for end-to-end tests: per-member inbound getStats() numbers and state,
 * which path carries the room's media ("mesh" or "sfu"), how the path to the SFU is doing
 * (src/rtc/sfuState.ts: "off", "connecting", "connected", "slow", "interrupted", "failed",
 * "retrying", "restoring", "reconnecting"), and the labels of the members the SFU hears
 * talking.
 */
function installTestHook(session: RoomSession, client: SignalingClient): void {
  if (typeof window === "undefined") return;
  (window as unknown as { __salon?: unknown }).__salon = {
    stats: () => session.stats(),
    snapshot: () => session.snapshot,
    signaling: () => client.state,
    media: () => (session.sfu.active ? "sfu" : "mesh"),
    sfuState: () => session.sfu.state,
    talking: () => {
      const talking = session.talking ?? new Set<string>();
      return session.snapshot.members.filter((m) => talking.has(m.id)).map((m) => m.label);
    },
  };
}
