/**
 * Whether this side's connections to the SFU work, and what to do when they do not: ask the
 * server for a new place on the SFU (`sfu_restart`, docs/PROTOCOL.md §3.10). The server answers
 * with `room_media`, and sfu.ts starts its media from scratch; nothing on this side can repair
 * a connection the SFU has given up on, nor one that never starts ICE (Chromium sometimes
 * leaves a connection in `new`, its gathering never ending, after its offer and answer).
 *
 * A connection does not work when its `connectionState` (webrtc-pc 4.4.1):
 *
 * - is not `connected` 10 s (`connectMs`) after sfu.ts starts watching it (the sending one once
 *   the SFU's answer applied to it: while the SFU refuses its offers, the SFU is what is down,
 *   and a new place there would not help), or after the latest description was applied to it;
 * - turns `failed`;
 * - stays `disconnected` for 5 s (`disconnectedMs`; ICE often comes back by itself sooner);
 * - has gathered no candidate 4 s (`gatheringStallMs`) after a local description was set on
 *   it (`expectCandidates`), and is not connected: that is Chromium's stalled gathering
 *   (src/rtc/peer.ts has the measurements), which no wait mends; host candidates come
 *   within milliseconds. Here, 1 subscriber of 33 in six-member rooms stayed `new` past 10 s.
 *
 * Only the connections there are count: the sending one from its first answer, the receiving
 * one once the SFU's first offer made it. That first offer is due once others send media
 * (`expectOffer`): one that has not come within `connectMs` counts as a connection that does
 * not work (alone in the room, or with nobody sending, nothing is offered: no failure).
 *
 * Then one `sfu_restart` goes out, and the next may go only once a wait has passed: 10 s after
 * the first, 20 s after the second, then 40 s, and at most 60 s (the server allows about
 * three a minute). When the wait is over and the connections still do not work (no answer
 * came, the new connections do not work either, or the server refused: `rate_limited`,
 * `sfu_unavailable`, or any other code but one, which may pass), the next one goes.
 * `not_sfu_room` stops asking: the room is no longer on the SFU. Once every connection carries
 * media (`settled`), the waits start again from 10 s.
 *
 * No ask goes while the signaling socket is away (`signalingOpen`): it would wait in the
 * socket's queue, and every ask that came due meanwhile would go out at once on resume. Once
 * the socket is back (`signalingBack`), an ask goes when the next one is due, and only if the
 * connections still do not work then.
 *
 * One `SfuWatchdog` lives as long as sfu.ts's media: `begin` at each start, `end` when it
 * closes. Timers are its only I/O.
 */
import { GATHERING_STALL_MS } from "./peer";
import type { SfuRole } from "./sfu";

export interface WatchdogPolicy {
  /** How long a connection may take to reach `connected`, from its watch or its latest description. */
  connectMs: number;
  /** `disconnected` this long counts as not working. */
  disconnectedMs: number;
  /** The wait after the first ask; it doubles with each ask that did not help. */
  firstWaitMs: number;
  /** The longest wait between two asks. */
  maxWaitMs: number;
  /** How long a local description may go without a candidate (`expectCandidates`). */
  gatheringStallMs: number;
}

export const WATCHDOG_POLICY: WatchdogPolicy = {
  connectMs: 10_000,
  disconnectedMs: 5_000,
  firstWaitMs: 10_000,
  maxWaitMs: 60_000,
  gatheringStallMs: GATHERING_STALL_MS,
};

/** What the watchdog has sfu.ts do, and what it asks it. */
export interface WatchdogActions {
  /** Send `sfu_restart`. */
  ask(): void;
  /** `reconnecting` changed. */
  changed(): void;
  /** A step for the trail (diagnostics). */
  note(step: string): void;
  /** The signaling socket is open: an ask would go out now rather than wait in its queue. */
  signalingOpen(): boolean;
}

/** Refusals no later ask gets past: the room's media is a mesh now. */
const FINAL_REFUSALS: ReadonlySet<string> = new Set(["not_sfu_room"]);

type Timer = ReturnType<typeof setTimeout>;

/** What the watchdog knows of one connection. */
interface Leg {
  state: RTCPeerConnectionState;
  /** Fires when the connection has not connected in time. */
  deadline: Timer | null;
  /** Fires when the connection has stayed `disconnected` too long. */
  outage: Timer | null;
  /** Why the connection does not work; null while it works or still has time. */
  trouble: string | null;
}

export class SfuWatchdog {
  private readonly legs = new Map<SfuRole, Leg>();
  /** The connections that have gathered a candidate, or ended gathering. */
  private readonly gatheredBy = new Set<SfuRole>();
  /** Fire when a connection's first candidate, due, has not come in time. */
  private readonly stalls = new Map<SfuRole, Timer>();
  /** The connections whose first candidate did not come in time (and has not since). */
  private readonly stalled = new Set<SfuRole>();
  /** Fires when the SFU's first offer, due, has not come in time. */
  private offerDeadline: Timer | null = null;
  /** The SFU's first offer is due and did not come in time: as bad as a connection that fails. */
  private offerLate = false;
  /** Asks since the connections last settled: how long the wait after the next one is. */
  private asks = 0;
  /** Runs from an ask until the next one may go. */
  private wait: Timer | null = null;
  /** Why the next ask goes, for the trail. */
  private reason = "";
  /** A refusal no ask gets past came: none goes out until the next `begin`. */
  private stopped = false;
  /** An ask came due while the signaling socket was away, and was held back. */
  private held = false;

  constructor(
    private readonly actions: WatchdogActions,
    private readonly policy: WatchdogPolicy = WATCHDOG_POLICY,
  ) {}

  /**
   * Asked for a new place on the SFU, and the connections do not carry media yet: the room
   * says it is reconnecting to the media server (sfuState.ts).
   */
  get reconnecting(): boolean {
    return this.asks > 0 && !this.stopped;
  }

  /**
   * Media starts (again) with new connections: an ask that was out is answered, and the old
   * connections are forgotten. The waits go on until the new ones settle.
   */
  begin(): void {
    this.forget();
    this.stopped = false;
  }

  /** Media stops (the room is left, or is a mesh): nothing more is asked. */
  end(): void {
    this.forget();
    this.clearWait();
    this.asks = 0;
    this.stopped = false;
  }

  /**
   * A connection is to be watched from now (the SFU answered its offer, or offered it), or a
   * description was applied to it: it has `connectMs` to connect from now.
   */
  watch(role: SfuRole, state: RTCPeerConnectionState): void {
    const leg = this.leg(role);
    clear(leg.deadline);
    leg.deadline = null;
    leg.trouble = this.stalled.has(role) ? this.stallTrouble(role) : null; // no wait mends it
    this.observe(role, state);
    if (state === "connected") return;
    leg.deadline = setTimeout(() => {
      leg.deadline = null;
      if (leg.state === "connected") return;
      leg.trouble = `${role} ${leg.state} after ${this.policy.connectMs} ms`;
      this.trip(leg.trouble);
    }, this.policy.connectMs);
  }

  /** A connection's `connectionState` changed; one not watched yet is not counted. */
  observe(role: SfuRole, state: RTCPeerConnectionState): void {
    const leg = this.legs.get(role);
    if (leg === undefined) return;
    leg.state = state;
    if (state === "connected") {
      clear(leg.deadline);
      leg.deadline = null;
      leg.trouble = null;
    }
    if (state !== "disconnected") {
      clear(leg.outage);
      leg.outage = null;
    }
    if (state === "failed") {
      leg.trouble = `${role} failed`;
      this.trip(leg.trouble);
    } else if (state === "disconnected" && leg.outage === null) {
      leg.outage = setTimeout(() => {
        leg.outage = null;
        leg.trouble = `${role} disconnected for ${this.policy.disconnectedMs} ms`;
        this.trip(leg.trouble);
      }, this.policy.disconnectedMs);
    }
  }

  /**
   * A local description was set on the `role` connection: unless it has gathered something
   * already, its first candidate is due within `gatheringStallMs`, and one that does not come
   * makes the connection one that does not work (see the module comment).
   */
  expectCandidates(role: SfuRole): void {
    if (this.gatheredBy.has(role) || this.stalls.has(role)) return;
    const stall = setTimeout(() => {
      this.stalls.delete(role);
      const leg = this.leg(role);
      if (this.gatheredBy.has(role) || leg.state === "connected") return;
      this.stalled.add(role);
      leg.trouble = this.stallTrouble(role);
      this.trip(leg.trouble);
    }, this.policy.gatheringStallMs);
    this.stalls.set(role, stall);
  }

  /** The `role` connection gathered a candidate, or ended gathering (webrtc-pc 4.4.1.4). */
  gathered(role: SfuRole): void {
    this.gatheredBy.add(role);
    this.stalled.delete(role);
    clear(this.stalls.get(role) ?? null);
    this.stalls.delete(role);
  }

  /**
   * Whether the SFU's first offer is due now (others send media, and nothing is received yet).
   * From when it becomes due, it has `connectMs` to come.
   */
  expectOffer(due: boolean): void {
    if (!due) {
      this.forgetOffer();
      return;
    }
    if (this.offerDeadline !== null || this.offerLate) return;
    this.offerDeadline = setTimeout(() => {
      this.offerDeadline = null;
      this.offerLate = true;
      this.trip(`no offer after ${this.policy.connectMs} ms`);
    }, this.policy.connectMs);
  }

  /** Every connection carries media and none is due: the waits start again from the first. */
  settled(): void {
    if (this.asks === 0) return;
    this.actions.note("connected: the restart waits start over");
    this.clearWait();
    this.asks = 0;
  }

  /** The server refused an ask (`error` with its ref; sfu.ts logs it). */
  refused(code: string): void {
    if (FINAL_REFUSALS.has(code)) {
      this.actions.note(`restart refused (${code}): no more`);
      this.stopped = true;
      this.clearWait();
      this.actions.changed();
      return;
    }
    this.actions.note(`restart refused (${code})`);
    this.reason = `refused: ${code}`; // asked again when the wait is over
  }

  /** The signaling socket is open again (resumed): an ask due and held back may go now. */
  signalingBack(): void {
    if (!this.held) return;
    this.held = false;
    this.actions.note("signaling back");
    this.askIfDue();
  }

  private stallTrouble(role: SfuRole): string {
    return `${role} gathered no candidate in ${this.policy.gatheringStallMs} ms`;
  }

  /** The connections do not work: ask now, or once the wait after the last ask is over. */
  private trip(reason: string): void {
    this.reason = reason;
    this.askIfDue();
  }

  /**
   * Ask when it is due: the connections do not work, no refusal stopped asking, the wait
   * after the last ask is over, and the signaling socket is open (else the ask is held back
   * until it is: `signalingBack`).
   */
  private askIfDue(): void {
    if (this.stopped || this.wait !== null || !this.broken()) return;
    if (!this.actions.signalingOpen()) {
      if (!this.held) this.actions.note("restart held back: the signaling socket is away");
      this.held = true;
      return;
    }
    this.ask();
  }

  private ask(): void {
    const waitMs = Math.min(this.policy.maxWaitMs, this.policy.firstWaitMs * 2 ** this.asks);
    this.asks += 1;
    this.actions.note(`restart asked (${this.reason}); the next after ${waitMs} ms`);
    this.reason = "not answered";
    this.wait = setTimeout(() => {
      this.wait = null;
      this.askIfDue();
    }, waitMs);
    this.actions.ask();
    if (this.asks === 1) this.actions.changed(); // now reconnecting
  }

  /** A connection does not work, or the SFU's first offer did not come in time. */
  private broken(): boolean {
    return this.offerLate || [...this.legs.values()].some((leg) => leg.trouble !== null);
  }

  private leg(role: SfuRole): Leg {
    const known = this.legs.get(role);
    if (known !== undefined) return known;
    const leg: Leg = { state: "new", deadline: null, outage: null, trouble: null };
    this.legs.set(role, leg);
    return leg;
  }

  /** Forget the connections, the offer due and an ask held back: they were the old media's. */
  private forget(): void {
    for (const leg of this.legs.values()) {
      clear(leg.deadline);
      clear(leg.outage);
    }
    this.legs.clear();
    for (const stall of this.stalls.values()) clear(stall);
    this.stalls.clear();
    this.stalled.clear();
    this.gatheredBy.clear();
    this.forgetOffer();
    this.held = false;
  }

  private forgetOffer(): void {
    clear(this.offerDeadline);
    this.offerDeadline = null;
    this.offerLate = false;
  }

  private clearWait(): void {
    clear(this.wait);
    this.wait = null;
  }
}

function clear(timer: Timer | null): void {
  if (timer !== null) clearTimeout(timer);
}
