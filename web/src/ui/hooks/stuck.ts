import { useCallback, useEffect, useState, useSyncExternalStore } from "react";
import type { Participant } from "../../room/session";
import { pageIceTransportPolicy } from "../../rtc/ice";
import { probeIce, type ProbeResult } from "../../rtc/probe";
import { CONNECT_BOUND_MS, ConnectWatch, stuckText } from "../stuck";

export interface Stuck {
  /** Members whose media connection has not come up within the bound. */
  readonly ids: ReadonlySet<string>;
  /** What the room says about them; null when nobody is stuck. */
  readonly text: string | null;
}

/** What the check needs from a room session: its ICE servers, freshly fetched. */
export interface IceSource {
  freshIceServers(): Promise<RTCIceServer[] | null>;
}

const NOBODY: Stuck = { ids: new Set(), text: null };

/**
 * Members stuck "Connecting…" past the bound, and why, as an external store: on the first
 * stuck member the browser's paths are probed once (fresh ICE servers, then `probeIce`), and
 * the finding is kept until nobody is stuck any more. Timers are its only I/O.
 */
export class StuckWatch {
  private readonly watch: ConnectWatch;
  private members: readonly Participant[] = [];
  private timer: ReturnType<typeof setTimeout> | null = null;
  private probe: ProbeResult | null = null;
  private probing = 0; // the generation of the probe under way; 0 for none
  private generation = 0;
  private current: Stuck = NOBODY;
  private readonly listeners = new Set<() => void>();

  constructor(
    private readonly source: IceSource,
    private readonly relayOnly: boolean,
    private readonly probeFn: (servers: RTCIceServer[]) => Promise<ProbeResult> = probeIce,
    private readonly now: () => number = Date.now,
    boundMs: number = CONNECT_BOUND_MS,
  ) {
    this.watch = new ConnectWatch(boundMs);
  }

  get snapshot(): Stuck {
    return this.current;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /**
   * The members as they are now. `onSfu`: the room's media goes through the SFU, whose own
   * notice (sfuState.ts) says what is wrong: no member is named here, and no firewall blamed.
   */
  feed(members: readonly Participant[], onSfu: boolean): void {
    this.members = members;
    this.watch.update(onSfu ? [] : members, this.now());
    this.refresh();
  }

  dispose(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.generation += 1; // a probe under way is ignored when it ends
  }

  private refresh(): void {
    const now = this.now();
    const ids = this.watch.stuck(now);
    if (ids.length === 0) {
      this.probe = null;
      this.probing = 0;
      this.generation += 1;
    } else if (this.probe === null && this.probing === 0) {
      void this.check();
    }
    if (this.timer !== null) clearTimeout(this.timer);
    const due = this.watch.nextDueMs(now);
    this.timer = due === null ? null : setTimeout(() => this.refresh(), due);
    const next =
      ids.length === 0
        ? NOBODY
        : {
            ids: new Set(ids),
            text: stuckText(
              this.members.filter((m) => ids.includes(m.id)).map((m) => m.label),
              this.relayOnly,
              this.probe,
            ),
          };
    const same =
      next.text === this.current.text &&
      next.ids.size === this.current.ids.size &&
      [...next.ids].every((id) => this.current.ids.has(id));
    if (same) return;
    this.current = next;
    for (const listener of [...this.listeners]) listener();
  }

  private async check(): Promise<void> {
    this.generation += 1;
    const mine = this.generation;
    this.probing = mine;
    const servers = (await this.source.freshIceServers()) ?? [];
    const result = await this.probeFn(servers);
    if (mine !== this.generation) return; // nobody is stuck any more, or disposed
    this.probing = 0;
    this.probe = result;
    this.refresh();
  }
}

/**
 * The room's stuck members (ui/stuck.ts), for the tiles and the room's notice; nobody while
 * the room is on the SFU (`onSfu`), which has a notice of its own.
 */
export function useStuckConnections(
  session: IceSource,
  members: readonly Participant[],
  onSfu: boolean,
): Stuck {
  const [watch] = useState(() => new StuckWatch(session, pageIceTransportPolicy() === "relay"));
  useEffect(() => watch.feed(members, onSfu), [watch, members, onSfu]);
  useEffect(() => () => watch.dispose(), [watch]);
  const subscribe = useCallback((listener: () => void) => watch.subscribe(listener), [watch]);
  return useSyncExternalStore(subscribe, () => watch.snapshot);
}
