/**
 * Direct calls by name: who is online, ringing out, ringing in, and the 1:1 room once
 * the callee accepts. Framework-free; the UI subscribes with `subscribe`/`snapshot`.
 *
 *   idle --call--> calling --ringing--> ringing --call_accepted--> in_call
 *   idle --incoming_call--> incoming --accept--> in_call
 *   ringing | incoming | in_call --call_ended--> idle (with an outcome)
 *
 * A call survives a reconnect like a room does (the RoomSession keeps its peer connections).
 * When the place itself is lost ("renewed"), so is the call: a direct call's room cannot be
 * joined again.
 */
import type { LocalMedia } from "../rtc/media";
import type { PeerConnectionFactory } from "../rtc/mesh";
import type { Welcome } from "../protocol";
import type { SignalingClient } from "../signaling/client";
import { Emitter } from "../signaling/emitter";
import { connectAs } from "./connect";
import { IceRefresh } from "./iceRefresh";
import { RoomSession } from "./session";

/**
 * Go online for direct calls: a hello with `reachable: true`, since only a reachable name
 * can be called (docs/PROTOCOL.md, hello). Such a name is unique on the server.
 */
export function connectForCalls(name: string): Promise<SignalingClient> {
  return connectAs(name, { reachable: true });
}

export type CallPhase = "idle" | "calling" | "ringing" | "incoming" | "in_call";

/** How the last call attempt ended, for the caller and the callee to read. */
export type CallOutcome =
  | "declined"
  | "cancelled"
  | "timeout"
  | "busy"
  | "offline"
  | "hangup"
  | "not_online"
  | "self_call"
  | "in_call"
  | "lost"
  | "failed";

export interface CallSnapshot {
  readonly phase: CallPhase;
  readonly online: readonly string[];
  readonly callId: string | null;
  /** The other person's name while calling, ringing, incoming or in a call. */
  readonly peer: string | null;
  /** Whether this side started the call. */
  readonly outgoing: boolean;
  readonly outcome: { reason: CallOutcome; peer: string; message: string } | null;
  readonly room: RoomSession | null;
  /**
   * The name this side can no longer be called by (`unreachable`): its registered owner
   * signed in, and this place was moved aside. Null while this side is callable.
   */
  readonly unreachable: string | null;
}

/**
 * The tab's title while a call rings in: it alternates between "📞 Sam is calling" and the
 * page's own title, one step per `tick`, so a background tab catches the eye.
 */
export function ringingTitle(peer: string, tick: number, pageTitle: string): string {
  return tick % 2 === 0 ? `📞 ${peer} is calling` : pageTitle;
}

export const CALL_LOST_MESSAGE = "The connection to the server was lost and the call ended.";

/**
 * How long past `welcome.limits.ring_seconds` a call may ring (or wait for its `ringing`)
 * without its `call_ended` before this side gives it up (ms): the end can be lost with the
 * messages missed while the connection was away (docs/PROTOCOL.md §2.8, §4.5).
 */
export const RING_MARGIN_MS = 5_000;

const RINGING: ReadonlySet<CallPhase> = new Set(["calling", "ringing", "incoming"]);

const byName = (a: string, b: string) => a.localeCompare(b, undefined, { sensitivity: "base" });

export class CallSession {
  private readonly events = new Emitter<{ change: void }>();
  private readonly unsubscribe: (() => void)[] = [];
  private current: CallSnapshot = {
    phase: "idle",
    online: [],
    callId: null,
    peer: null,
    outgoing: false,
    outcome: null,
    room: null,
    unreachable: null,
  };
  /** The room of the accepted call, known before its `joined` arrives. */
  private callRoom: string | null = null;
  /** Gives up a call whose end never came (RING_MARGIN_MS). */
  private ringTimer: ReturnType<typeof setTimeout> | null = null;
  /** Keeps TURN credentials fresh while the page waits for calls (a call's room does it then). */
  private readonly iceRefresh: IceRefresh;

  constructor(
    private readonly client: SignalingClient,
    private readonly local: LocalMedia,
    private readonly factory?: PeerConnectionFactory,
  ) {
    this.iceRefresh = new IceRefresh(client);
    this.listen();
    this.iceRefresh.schedule(client.iceServers);
    client.send({ type: "presence_watch", watch: true });
    installTestHook(this, client);
  }

  get snapshot(): CallSnapshot {
    return this.current;
  }

  subscribe(handler: () => void): () => void {
    return this.events.on("change", handler);
  }

  call(name: string): void {
    const peer = name.trim();
    if (peer === "" || this.current.phase !== "idle") return;
    this.update({ phase: "calling", peer, outgoing: true, outcome: null });
    this.client.send({ type: "call", name: peer });
  }

  accept(): void {
    if (this.current.phase !== "incoming" || this.current.callId === null) return;
    this.client.send({ type: "call_accept", call: this.current.callId });
  }

  decline(): void {
    if (this.current.phase !== "incoming" || this.current.callId === null) return;
    this.client.send({ type: "call_decline", call: this.current.callId });
    this.update({ phase: "idle", callId: null, peer: null, outcome: null });
  }

  cancel(): void {
    if (this.current.phase !== "ringing" || this.current.callId === null) return;
    this.client.send({ type: "call_cancel", call: this.current.callId });
  }

  hangUp(): void {
    const { room, peer } = this.current;
    if (room === null) return;
    room.leave();
    room.dispose();
    this.update({
      phase: "idle",
      room: null,
      callId: null,
      outcome: { reason: "hangup", peer: peer ?? "", message: "You hung up." },
    });
  }

  dispose(): void {
    this.stopRingTimer();
    this.iceRefresh.stop();
    for (const off of this.unsubscribe.splice(0)) off();
    this.current.room?.dispose();
  }

  private listen(): void {
    const c = this.client;
    this.unsubscribe.push(
      c.on("presence", (m) => this.update({ online: [...m.names].sort(byName) })),
      c.on("presence_changed", (m) => {
        const others = this.current.online.filter((n) => n.toLowerCase() !== m.name.toLowerCase());
        this.update({ online: (m.online ? [...others, m.name] : others).sort(byName) });
      }),
      c.on("unreachable", (m) => this.update({ unreachable: m.name })),
      c.on("ringing", (m) => this.update({ phase: "ringing", callId: m.call, peer: m.name })),
      c.on("incoming_call", (m) => {
        // Busy: the server answers the caller for us. While our own call has not rung yet, the
        // two crossed: the server refuses ours (in_call, ignored from now on) and rings us.
        if (this.current.phase !== "idle" && this.current.phase !== "calling") return;
        this.update({ phase: "incoming", callId: m.call, peer: m.name, outgoing: false, outcome: null });
      }),
      c.on("call_accepted", (m) => {
        if (m.call !== this.current.callId) return;
        // Subscribe before the `joined` that follows in the next frame.
        const room = new RoomSession(this.client, this.local, this.factory);
        this.callRoom = m.room;
        this.update({ phase: "in_call", room });
      }),
      c.on("call_ended", (m) => {
        if (m.call !== this.current.callId && this.current.phase !== "calling") return;
        this.current.room?.dispose();
        const peer = this.current.peer ?? "";
        this.update({
          phase: "idle",
          room: null,
          callId: null,
          outcome: { reason: m.reason, peer, message: describe(m.reason, peer, this.current.outgoing) },
        });
      }),
      c.on("error", (m) => {
        if (m.code === "no_such_call" && RINGING.has(this.current.phase)) {
          // Accept or cancel of a call that ended while this side was away (§4.5).
          this.endLost();
          return;
        }
        if (this.current.phase !== "calling") return;
        const reason =
          (["not_online", "self_call", "in_call"] as const).find((r) => r === m.code) ?? "failed";
        const peer = this.current.peer ?? "";
        this.update({ phase: "idle", peer: null, outcome: { reason, peer, message: m.message } });
      }),
      c.on("ice_servers", (m) => {
        if (this.current.room === null) this.iceRefresh.schedule(m.ice_servers);
      }),
      c.onResumed((w) => this.onResumed(w)),
      c.onRenewed((w) => {
        this.endLost();
        this.iceRefresh.schedule(w.ice_servers);
        // A new place watches nothing yet.
        this.client.send({ type: "presence_watch", watch: true });
      }),
    );
  }

  private onResumed(welcome: Welcome): void {
    if (this.current.room === null) this.iceRefresh.schedule(welcome.ice_servers);
    const resumed = welcome.resumed ?? null;
    // The place came back without the call's room: the call was hung up while away.
    if (this.current.phase === "in_call" && (resumed === null || resumed.room !== this.callRoom))
      this.endLost();
    // Presence changes may have been dropped with the kept messages: ask for the whole list.
    if (resumed?.missed) this.client.send({ type: "presence_watch", watch: true });
  }

  /** The call (or the attempt) ended with the connection to the server. */
  private endLost(): void {
    if (this.current.phase === "idle") return;
    this.current.room?.dispose();
    this.callRoom = null;
    const peer = this.current.peer ?? "";
    this.update({
      phase: "idle",
      room: null,
      callId: null,
      outcome: { reason: "lost", peer, message: CALL_LOST_MESSAGE },
    });
  }

  private update(patch: Partial<CallSnapshot>): void {
    const before = this.current;
    this.current = { ...this.current, ...patch };
    if (before.room === null && this.current.room !== null) this.iceRefresh.stop();
    if (before.room !== null && this.current.room === null) this.iceRefresh.schedule(this.client.iceServers);
    if (before.phase !== this.current.phase || before.callId !== this.current.callId) this.armRingTimer();
    this.events.emit("change", undefined);
  }

  /** While a call rings (either way) or waits for its `ringing`, give it up after
   * `ring_seconds` and RING_MARGIN_MS without its end: the server ends it by then. */
  private armRingTimer(): void {
    this.stopRingTimer();
    const { phase, callId } = this.current;
    if (!RINGING.has(phase)) return;
    const seconds = this.client.welcome?.limits.ring_seconds ?? 30;
    this.ringTimer = setTimeout(
      () => {
        this.ringTimer = null;
        if (this.current.phase === phase && this.current.callId === callId) this.endLost();
      },
      seconds * 1000 + RING_MARGIN_MS,
    );
  }

  private stopRingTimer(): void {
    if (this.ringTimer !== null) clearTimeout(this.ringTimer);
    this.ringTimer = null;
  }
}

function describe(reason: CallOutcome, peer: string, outgoing: boolean): string {
  switch (reason) {
    case "declined":
      return outgoing ? `${peer} declined the call.` : "You declined the call.";
    case "cancelled":
      return outgoing ? "You cancelled the call." : `${peer} cancelled the call.`;
    case "timeout":
      return outgoing ? `No answer from ${peer}.` : `You missed a call from ${peer}.`;
    case "busy":
      return `${peer} is busy in another call.`;
    case "offline":
      return `${peer} went offline.`;
    case "hangup":
      return `${peer} hung up.`;
    default:
      return "The call could not be placed.";
  }
}

/**
 * `window.__salon` on the /call page before a call's RoomSession replaces it: the signaling
 * state, and the call's room once there is one (for end-to-end tests).
 */
function installTestHook(calls: CallSession, client: SignalingClient): void {
  if (typeof window === "undefined") return;
  (window as unknown as { __salon?: unknown }).__salon = {
    stats: () => calls.snapshot.room?.stats() ?? Promise.resolve({}),
    snapshot: () => calls.snapshot.room?.snapshot ?? null,
    signaling: () => client.state,
  };
}
