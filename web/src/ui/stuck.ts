/**
 * A bound on "Connecting…": a member whose media connection has not come up within
 * `CONNECT_BOUND_MS` is shown as unable to connect, and the room says why as far as this
 * browser can tell (the relay, from the pre-join check's probe, src/rtc/probe.ts). The
 * connection is not given up: if it comes up later, the state clears by itself.
 *
 * Without this bound, a relay-only page (`?ice=relay`) whose relay is down waits forever:
 * with no candidate at all, ICE never leaves `new`, so neither `failed` nor the recovery in
 * src/rtc/recovery.ts ever comes.
 *
 * A mesh's bound only: in a room on the SFU, members have no connection of their own, and the
 * room's notice about the path to the SFU (src/rtc/sfuState.ts) says what is wrong.
 */
import type { Participant } from "../room/session";
import type { ProbeResult } from "../rtc/probe";

/** A working call, relayed or not, connects within a few seconds; this is far beyond that. */
export const CONNECT_BOUND_MS = 15_000;

/** Whether the member's media connection is being set up for the first time. */
export function connecting(member: Participant): boolean {
  return (
    !member.reconnecting &&
    member.recovery === null &&
    member.connection !== "connected" &&
    member.connection !== "disconnected"
  );
}

/** Since when each member has been connecting; pure, so tests drive the clock. */
export class ConnectWatch {
  private readonly since = new Map<string, number>();

  constructor(private readonly boundMs: number = CONNECT_BOUND_MS) {}

  /** Feed the members as they are now. */
  update(members: readonly Participant[], now: number): void {
    const present = new Set(members.map((m) => m.id));
    for (const id of [...this.since.keys()]) if (!present.has(id)) this.since.delete(id);
    for (const m of members) {
      if (!connecting(m)) this.since.delete(m.id);
      else if (!this.since.has(m.id)) this.since.set(m.id, now);
    }
  }

  /** The ids connecting for `boundMs` or longer. */
  stuck(now: number): string[] {
    return [...this.since].filter(([, t]) => now - t >= this.boundMs).map(([id]) => id);
  }

  /** Milliseconds until the next member becomes stuck; null when nobody is on the way. */
  nextDueMs(now: number): number | null {
    const due = [...this.since.values()].map((t) => t + this.boundMs - now).filter((d) => d > 0);
    return due.length === 0 ? null : Math.min(...due);
  }
}

/**
 * The room's sentence about members it cannot connect to. `probe` is null while the check of
 * this browser's paths runs; `relayOnly` is the page's `?ice=relay` setting.
 */
export function stuckText(names: readonly string[], relayOnly: boolean, probe: ProbeResult | null): string {
  const who =
    names.length <= 2 ? names.join(" and ") : `${names.slice(0, 2).join(", ")} and ${names.length - 2} more`;
  const head = `No media connection to ${who} after ${CONNECT_BOUND_MS / 1000} seconds.`;
  if (probe === null) return `${head} Checking why…`;
  if (!probe.relay && (relayOnly || probe.turnConfigured)) {
    const why = !probe.turnConfigured
      ? "this server has no relay"
      : {
          refused: "the relay server refused the credentials",
          unreachable: "the relay server could not be reached",
          unknown: "the relay server could not be reached or refused the credentials",
        }[probe.relayProblem ?? "unknown"];
    return relayOnly
      ? `${head} This page sends media only through the relay (?ice=relay), and ${why}.`
      : `${head} No direct path worked, and ${why}.`;
  }
  return `${head} A firewall between you may be blocking it; it keeps trying.`;
}
