/**
 * Whether this side's connections to the SFU work, and what to do when they do not: ask the
 * server for a new place on the SFU (`sfu_restart`, docs/PROTOCOL.md §3.10). The server answers
 * with `room_media`, and sfu.ts starts its media from scratch; nothing on this side can repair
 * a connection the SFU has given up on, nor one that never starts ICE (Chromium sometimes
 * leaves a connection in `new`, its gathering never ending, after its offer and answer).
 *
 * A connection does not work when its `connectionState` (webrtc-pc 4.4.1):
 *
 * - is not `connected` 10 s (`connectMs`) after it was made, or after the latest description
 *   was applied to it;
 * - turns `failed`;
 * - stays `disconnected` for 5 s (`disconnectedMs`; ICE often comes back by itself sooner).
 *
 * Only the connections there are count: the sending one from the start, the receiving one once
 * the SFU's first offer made it (alone in the room, nobody's media is offered: no failure).
 *
 * Then one `sfu_restart` goes out, and the next may go only once a wait has passed: 10 s after
 * the first, 20 s after the second, then 40 s, and at most 60 s (the server allows about
 * three a minute). When the wait is over and no answer came, or the new connections do not
 * work either, or the server refused (`rate_limited`, `sfu_unavailable`, or any other code but
 * one: it may pass), the next one goes. `not_sfu_room` stops asking: the room is no longer on
 * the SFU. Once every connection carries media (`settled`), the waits start again from 10 s.
 *
 * One `SfuWatchdog` lives as long as sfu.ts's media: `begin` at each start, `end` when it
 * closes. Timers are its only I/O.
 */
import type { SfuRole } from "./sfu";

export interface WatchdogPolicy {
  /** How long a connection may take to reach `connected`, from its making or its latest description. */
  connectMs: number;
  /** `disconnected` this long counts as not working. */
  disconnectedMs: number;
  /** The wait after the first ask; it doubles with each ask that did not help. */
  firstWaitMs: number;
  /** The longest wait between two asks. */
  maxWaitMs: number;
}

export const WATCHDOG_POLICY: WatchdogPolicy = {
  connectMs: 10_000,
  disconnectedMs: 5_000,
  firstWaitMs: 10_000,
  maxWaitMs: 60_000,
};

/** What the watchdog has sfu.ts do. */
export interface WatchdogActions {
  /** Send `sfu_restart`. */
  ask(): void;
  /** `reconnecting` changed. */
  changed(): void;
  /** A step for the trail (diagnostics). */
  note(step: string): void;
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
}

export class SfuWatchdog {
  private readonly legs = new Map<SfuRole, Leg>();
  /** Asks since the connections last settled: how long the wait after the next one is. */
  private asks = 0;
  /** Runs from an ask until the next one may go. */
  private wait: Timer | null = null;
  /** The connections do not work: an ask goes out as soon as the wait allows. */
  private wanted = false;
  /** Why, for the trail. */
  private reason = "";
  /** A refusal no ask gets past came: none goes out until the next `begin`. */
  private stopped = false;

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
    this.forgetLegs();
    this.wanted = false;
    this.stopped = false;
  }

  /** Media stops (the room is left, or is a mesh): nothing more is asked. */
  end(): void {
    this.forgetLegs();
    this.clearWait();
    this.asks = 0;
    this.wanted = false;
    this.stopped = false;
  }

  /**
   * A connection was made, or a description was applied to it: it has `connectMs` to connect
   * from now.
   */
  watch(role: SfuRole, state: RTCPeerConnectionState): void {
    const leg = this.leg(role);
    clear(leg.deadline);
    leg.deadline = null;
    this.observe(role, state);
    if (state === "connected") return;
    leg.deadline = setTimeout(() => {
      leg.deadline = null;
      if (leg.state !== "connected") this.trip(`${role} ${leg.state} after ${this.policy.connectMs} ms`);
    }, this.policy.connectMs);
  }

  /** A connection's `connectionState` changed. */
  observe(role: SfuRole, state: RTCPeerConnectionState): void {
    const leg = this.legs.get(role);
    if (leg === undefined) return;
    leg.state = state;
    if (state === "connected") {
      clear(leg.deadline);
      leg.deadline = null;
    }
    if (state !== "disconnected") {
      clear(leg.outage);
      leg.outage = null;
    }
    if (state === "failed") this.trip(`${role} failed`);
    else if (state === "disconnected" && leg.outage === null) {
      leg.outage = setTimeout(() => {
        leg.outage = null;
        this.trip(`${role} disconnected for ${this.policy.disconnectedMs} ms`);
      }, this.policy.disconnectedMs);
    }
  }

  /** Every connection carries media and none is due: the waits start again from the first. */
  settled(): void {
    if (this.asks === 0) return;
    this.actions.note("connected: the restart waits start over");
    this.clearWait();
    this.asks = 0;
    this.wanted = false;
  }

  /** The server refused an ask (`error` with its ref; sfu.ts logs it). */
  refused(code: string): void {
    if (FINAL_REFUSALS.has(code)) {
      this.actions.note(`restart refused (${code}): no more`);
      this.stopped = true;
      this.wanted = false;
      this.clearWait();
      this.actions.changed();
      return;
    }
    this.actions.note(`restart refused (${code})`);
    this.reason = `refused: ${code}`; // asked again when the wait is over
  }

  /** The connections do not work: ask now, or once the wait after the last ask is over. */
  private trip(reason: string): void {
    if (this.wanted || this.stopped) return;
    this.wanted = true;
    this.reason = reason;
    if (this.wait === null) this.ask();
  }

  private ask(): void {
    const waitMs = Math.min(this.policy.maxWaitMs, this.policy.firstWaitMs * 2 ** this.asks);
    this.asks += 1;
    this.actions.note(`restart asked (${this.reason}); the next after ${waitMs} ms`);
    this.reason = "not answered";
    this.wait = setTimeout(() => {
      this.wait = null;
      if (this.wanted) this.ask();
    }, waitMs);
    this.actions.ask();
    if (this.asks === 1) this.actions.changed(); // now reconnecting
  }

  private leg(role: SfuRole): Leg {
    const known = this.legs.get(role);
    if (known !== undefined) return known;
    const leg: Leg = { state: "new", deadline: null, outage: null };
    this.legs.set(role, leg);
    return leg;
  }

  private forgetLegs(): void {
    for (const leg of this.legs.values()) {
      clear(leg.deadline);
      clear(leg.outage);
    }
    this.legs.clear();
  }

  private clearWait(): void {
    clear(this.wait);
    this.wait = null;
  }
}

function clear(timer: Timer | null): void {
  if (timer !== null) clearTimeout(timer);
}
