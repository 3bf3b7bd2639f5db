/**
 * A room as this client lives it: the signaling client, the mesh and the local media tied
 * together, with one immutable snapshot the UI renders. Framework-free: React hooks
 * subscribe with `subscribe`/`snapshot`.
 */
import type { ChatEntry, IceServer, Joined, Media, MemberInfo } from "../protocol";
import { pageIceTransportPolicy, refreshDelayMs, toRtcIceServers, turnExpiryMs } from "../rtc/ice";
import { Mesh, type PeerConnectionFactory, type PeerStats, type RemotePeer } from "../rtc/mesh";
import type { LocalMedia, LocalMediaState } from "../rtc/media";
import type { SignalingClient } from "../signaling/client";
import { Emitter } from "../signaling/emitter";

export type RoomPhase = "joining" | "joined" | "left" | "failed";

export interface Participant {
  readonly id: string;
  readonly name: string;
  readonly media: Media;
  readonly camera: MediaStream | null;
  readonly screen: MediaStream | null;
  readonly connection: RTCPeerConnectionState;
}

export interface RoomProblem {
  code: string;
  message: string;
}

export interface RoomSnapshot {
  readonly phase: RoomPhase;
  readonly room: string | null;
  readonly isPrivate: boolean;
  readonly selfId: string;
  readonly selfName: string;
  readonly members: readonly Participant[];
  readonly chat: readonly ChatEntry[];
  /** Why joining failed, or the last refused action. */
  readonly problem: RoomProblem | null;
  /** The connection to the server dropped while in the room. */
  readonly lost: boolean;
}

interface MemberRecord {
  name: string;
  media: Media;
}

export class RoomSession {
  readonly mesh: Mesh;
  private readonly events = new Emitter<{ change: void }>();
  private readonly members = new Map<string, MemberRecord>();
  private readonly unsubscribe: (() => void)[] = [];
  private current: RoomSnapshot;
  private iceRefresh: ReturnType<typeof setTimeout> | null = null;
  private chat: ChatEntry[] = [];
  private sentMedia = "";

  constructor(
    private readonly client: SignalingClient,
    private readonly local: LocalMedia,
    factory?: PeerConnectionFactory,
  ) {
    const welcome = client.welcome;
    const iceServers = toRtcIceServers(welcome?.ice_servers ?? []);
    this.mesh = new Mesh(
      (to, payload) => client.send({ type: "signal", to, ...payload }),
      // One transport for everything (RFC 9143): one ICE and DTLS handshake per pair.
      // The pool gathers candidates while the polite side waits for the offer.
      {
        iceServers,
        // "relay" only with the diagnostic ?ice=relay setting (docs/TURN.md).
        iceTransportPolicy: pageIceTransportPolicy(),
        bundlePolicy: "max-bundle",
        rtcpMuxPolicy: "require",
        iceCandidatePoolSize: 1,
      },
      factory,
    );
    this.current = {
      phase: "joining",
      room: null,
      isPrivate: false,
      selfId: welcome?.id ?? "",
      selfName: welcome?.name ?? "",
      members: [],
      chat: [],
      problem: null,
      lost: false,
    };
    this.listen();
    this.scheduleIceRefresh(welcome?.ice_servers ?? []);
    const tracks = local.state;
    this.mesh.setTrack("audio", tracks.audio);
    this.mesh.setTrack("video", tracks.video);
    this.mesh.setTrack("screen", tracks.screen);
    installTestHook(this);
  }

  get snapshot(): RoomSnapshot {
    return this.current;
  }

  subscribe(handler: () => void): () => void {
    return this.events.on("change", handler);
  }

  /** Ask to join a room by id; the answer is `joined` or an error. */
  join(room: string, password?: string): void {
    this.client.send({
      type: "join",
      room,
      ...(password ? { password } : {}),
      media: this.mediaState(),
    });
  }

  leave(): void {
    if (this.current.phase === "joined") this.client.send({ type: "leave" });
    this.mesh.close();
    this.update({ phase: "left" });
  }

  sendChat(text: string): boolean {
    if (this.current.phase !== "joined" || text.trim() === "") return false;
    return this.client.send({ type: "chat", text });
  }

  /** Current audio level of a member (0..1); the local level is measured by the UI's meter. */
  audioLevel(id: string): number {
    return this.mesh.audioLevel(id);
  }

  async stats(): Promise<Record<string, PeerStats & { name: string }>> {
    const raw = await this.mesh.stats();
    const out: Record<string, PeerStats & { name: string }> = {};
    for (const [id, stat] of Object.entries(raw)) {
      const name = this.members.get(id)?.name ?? id;
      out[name] = { ...stat, name };
    }
    return out;
  }

  /** Stop listening and close every connection (the signaling client stays open). */
  dispose(): void {
    if (this.iceRefresh !== null) clearTimeout(this.iceRefresh);
    this.iceRefresh = null;
    for (const off of this.unsubscribe.splice(0)) off();
    this.mesh.close();
  }

  private listen(): void {
    const c = this.client;
    this.unsubscribe.push(
      c.on("joined", (m) => this.onJoined(m)),
      c.on("member_joined", (m) => this.addMember(m.member)),
      c.on("member_left", (m) => {
        this.members.delete(m.id);
        this.mesh.remove(m.id);
      }),
      c.on("signal", (m) => void this.mesh.receive(m.from, m)),
      c.on("ice_servers", (m) => {
        this.mesh.setIceServers(toRtcIceServers(m.ice_servers));
        this.scheduleIceRefresh(m.ice_servers);
      }),
      c.on("media", (m) => {
        const member = this.members.get(m.from);
        if (member === undefined) return;
        member.media = { mic: m.mic, camera: m.camera, screen: m.screen };
        this.refresh();
      }),
      c.on("chat", (m) => this.addChat([m])),
      c.on("history", (m) => this.addChat(m.messages)),
      c.on("left", () => {
        this.mesh.close();
        this.update({ phase: "left" });
      }),
      c.on("error", (m) => {
        // A signal to someone who just left is refused; that is not news for the person.
        if (m.code === "no_such_member") return;
        const failed = this.current.phase === "joining";
        this.update({
          problem: { code: m.code, message: m.message },
          ...(failed ? { phase: "failed" } : {}),
        });
      }),
      c.onClose((info) => {
        if (!info.expected && this.current.phase === "joined") {
          this.mesh.close();
          this.update({ lost: true });
        }
      }),
      this.mesh.onChange(() => this.refresh()),
      this.local.onTrack((change) => this.mesh.setTrack(change.kind, change.track)),
      this.local.onChange((state) => this.announce(state)),
    );
  }

  /**
   * TURN credentials expire (hours): ask for fresh ones at half their remaining life
   * (docs/PROTOCOL.md §2.2), so connections and ICE restarts made later can still relay.
   */
  private scheduleIceRefresh(servers: readonly IceServer[]): void {
    if (this.iceRefresh !== null) clearTimeout(this.iceRefresh);
    this.iceRefresh = null;
    const expiry = turnExpiryMs(servers);
    if (expiry === null) return;
    this.iceRefresh = setTimeout(
      () => {
        this.iceRefresh = null;
        this.client.send({ type: "ice_refresh" });
      },
      refreshDelayMs(expiry, Date.now()),
    );
  }

  private onJoined(joined: Joined): void {
    this.members.clear();
    this.chat = [];
    this.update({ phase: "joined", room: joined.room, isPrivate: joined.private, problem: null });
    this.sentMedia = "";
    this.announce(this.local.state);
    this.addChat(joined.history);
    for (const member of joined.members) this.addMember(member);
    if (joined.members.length === 0) this.refresh();
  }

  private addMember(member: MemberInfo): void {
    this.members.set(member.id, { name: member.name, media: { ...member.media } });
    this.mesh.add(member.id, member.polite);
  }

  private addChat(entries: readonly ChatEntry[]): void {
    const seen = new Set(this.chat.map((e) => e.seq));
    const fresh = entries.filter((e) => !seen.has(e.seq));
    if (fresh.length === 0) return;
    this.chat = [...this.chat, ...fresh].sort((a, b) => a.seq - b.seq);
    this.update({ chat: this.chat });
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
    const peers = new Map<string, RemotePeer>(this.mesh.remote.map((p) => [p.id, p]));
    const members: Participant[] = [];
    for (const [id, record] of this.members) {
      const peer = peers.get(id);
      members.push({
        id,
        name: record.name,
        media: record.media,
        camera: peer?.camera ?? null,
        screen: peer?.screen ?? null,
        connection: peer?.connection ?? "new",
      });
    }
    this.update({ members });
  }

  private update(patch: Partial<RoomSnapshot>): void {
    this.current = { ...this.current, ...patch };
    this.events.emit("change", undefined);
  }
}

/** `window.__salon`: per-member inbound getStats() numbers, for end-to-end tests. */
function installTestHook(session: RoomSession): void {
  if (typeof window === "undefined") return;
  (window as unknown as { __salon?: unknown }).__salon = {
    stats: () => session.stats(),
    snapshot: () => session.snapshot,
  };
}
