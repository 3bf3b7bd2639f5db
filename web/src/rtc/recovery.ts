/**
 * What one side does when its media connection toward one member breaks, and the limits on
 * it (docs/PROTOCOL.md, "Signal payloads"):
 *
 *   ICE `failed`, or `disconnected` for longer than a grace period
 *     → restart ICE (fresh TURN credentials first), a few times, waiting longer each time;
 *   restarts exhausted, or a description failed to apply
 *     → the impolite side rebuilds the connection and sends `reset`; the polite side says
 *       `rejected` (for a description) and waits for that reset;
 *   too many rebuilds in a minute
 *     → give up and say so.
 *
 * One `PeerRecovery` per remote member lives as long as the member; the mesh carries out
 * its decisions (restart, rebuild). Timers are its only I/O.
 */
import type { LinkFailure } from "./peer";

/** What the member's tile says about its media connection; null when there is nothing to say. */
export type Recovery = "restarting" | "rebuilding" | "failed" | null;

/** Why the impolite side rebuilt (`reset.reason` on the wire). */
export type ResetReason = "ice_failed" | "description_failed" | "rejected";

export interface RecoveryPolicy {
  /** ICE `disconnected` this long counts as failed (it often comes back by itself sooner). */
  disconnectedGraceMs: number;
  /** The wait before each ICE restart; its length is the number of restarts tried. */
  restartBackoffMs: readonly number[];
  /**
   * How long a restart, or a rebuilt connection, may take to reach `connected` before it
   * counts as failed; also how long the polite side waits for a `reset` before giving up.
   */
  attemptTimeoutMs: number;
  /** How long to wait for fresh ICE servers before restarting with the ones in hand. */
  iceServersTimeoutMs: number;
  /** At most `maxRebuilds` rebuilds per member within `rebuildWindowMs`. */
  maxRebuilds: number;
  rebuildWindowMs: number;
}

export const RECOVERY_POLICY: RecoveryPolicy = {
  disconnectedGraceMs: 3000,
  restartBackoffMs: [1000, 2000, 4000],
  attemptTimeoutMs: 10_000,
  iceServersTimeoutMs: 5000,
  maxRebuilds: 3,
  rebuildWindowMs: 60_000,
};

/**
 * The connection's health, from both of its states: Chromium can report `failed` in
 * connectionState while iceConnectionState stays `disconnected` (measured with a relay that
 * went away), so neither alone is enough.
 */
export type Health = "ok" | "pending" | "disconnected" | "failed";

export function healthOf(ice: RTCIceConnectionState, connection: RTCPeerConnectionState): Health {
  if (ice === "failed" || connection === "failed") return "failed";
  if (ice === "disconnected" || connection === "disconnected") return "disconnected";
  if (ice === "connected" || ice === "completed") return "ok";
  return "pending"; // new, checking, closed
}

/** What the mesh does on the recovery's behalf. */
export interface RecoveryActions {
  /** The current connection's health. */
  health(): Health;
  /** Fresh ICE servers, `setConfiguration`, `restartIce()`. */
  restart(): void;
  /** Close the connection, open a new one, send `reset {reason}` (impolite side only). */
  rebuild(reason: ResetReason): void;
  /** `state` changed. */
  changed(): void;
}

/** Where the ICE restart cycle is. */
type Phase =
  | "idle" // healthy, or nothing left to do
  | "grace" // disconnected: waiting to see whether ICE comes back by itself
  | "backoff" // a restart is due when the timer fires
  | "attempt" // a restart (or a rebuild) was made: waiting for `connected`
  | "awaiting-reset"; // polite side: only the impolite side's reset can help now

export class PeerRecovery {
  private phase: Phase = "idle";
  private restarts = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private readonly rebuiltAt: number[] = [];
  private current: Recovery = null;
  private lastHealth: Health = "pending";

  constructor(
    readonly polite: boolean,
    private readonly actions: RecoveryActions,
    private readonly policy: RecoveryPolicy = RECOVERY_POLICY,
    private readonly now: () => number = Date.now,
  ) {}

  get state(): Recovery {
    return this.current;
  }

  /** Feed every state change of the current connection; only changes of health count. */
  observe(health: Health): void {
    if (health === this.lastHealth) return;
    this.lastHealth = health;
    if (health === "ok") {
      this.healthy();
    } else if (health === "failed") {
      if (this.phase !== "backoff" && this.phase !== "awaiting-reset") this.trouble();
    } else if (health === "disconnected") {
      if (this.phase === "idle" || this.phase === "attempt") {
        this.wait("grace", this.policy.disconnectedGraceMs, () => this.trouble());
      }
    }
  }

  /** Restart now, with a fresh set of attempts (after a signaling resume, say). */
  restartNow(): void {
    if (this.phase === "awaiting-reset") return;
    this.restarts = 0;
    if (this.actions.health() !== "ok") this.set("restarting");
    this.attempt();
  }

  /** The link reported that the connection cannot go on as it is. */
  failure(failure: LinkFailure): void {
    if (!this.polite) this.actions.rebuild(failure);
    else this.awaitReset();
  }

  /**
   * Whether a rebuild may happen now: at most `maxRebuilds` in `rebuildWindowMs`. Counts it
   * if so; otherwise the state becomes "failed".
   */
  takeRebuild(): boolean {
    const now = this.now();
    while (this.rebuiltAt.length > 0 && this.rebuiltAt[0]! <= now - this.policy.rebuildWindowMs) {
      this.rebuiltAt.shift();
    }
    if (this.rebuiltAt.length >= this.policy.maxRebuilds) {
      this.stop();
      this.set("failed");
      return false;
    }
    this.rebuiltAt.push(now);
    return true;
  }

  /** The connection was replaced: a fresh cycle, and the new one has a deadline too. */
  rebuilt(): void {
    this.restarts = 0;
    this.lastHealth = "pending";
    this.set("rebuilding");
    this.wait("attempt", this.policy.attemptTimeoutMs, () => this.judge());
  }

  dispose(): void {
    this.stop();
  }

  private healthy(): void {
    this.stop();
    this.restarts = 0;
    this.set(null);
  }

  /** ICE failed (or stayed disconnected, or a restart did not help): restart, or give up. */
  private trouble(): void {
    const delay = this.policy.restartBackoffMs[this.restarts];
    if (delay === undefined) {
      this.stop();
      if (this.polite) this.awaitReset();
      else this.actions.rebuild("ice_failed");
      return;
    }
    this.restarts += 1;
    this.set("restarting");
    this.wait("backoff", delay, () => this.attempt());
  }

  private attempt(): void {
    this.wait("attempt", this.policy.attemptTimeoutMs, () => this.judge());
    this.actions.restart();
  }

  /** An attempt's time is up: it worked (without an event saying so) or it did not. */
  private judge(): void {
    if (this.actions.health() === "ok") this.healthy();
    else this.trouble();
  }

  /** Polite side: only the impolite side's reset can help; it gets one attempt's time. */
  private awaitReset(): void {
    this.set("rebuilding");
    this.wait("awaiting-reset", this.policy.attemptTimeoutMs, () => {
      this.phase = "idle";
      this.set("failed");
    });
  }

  private wait(phase: Phase, ms: number, then: () => void): void {
    this.stop();
    this.phase = phase;
    this.timer = setTimeout(() => {
      this.timer = null;
      then();
    }, ms);
  }

  private stop(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.phase = "idle";
  }

  private set(state: Recovery): void {
    if (state === this.current) return;
    this.current = state;
    this.actions.changed();
  }
}
