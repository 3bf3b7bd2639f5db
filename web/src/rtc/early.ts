/**
 * Signals from a member the mesh does not know yet: kept, a few and briefly, and handed over
 * when it is added. An offer can overtake the message that announces its sender (after a
 * resume, say), and the polite side never offers first, so a lost first offer would leave
 * the pair waiting for good.
 */
import type { SignalPayload } from "./peer";

export const EARLY_SIGNALS_PER_MEMBER = 64;
export const EARLY_SENDERS = 16;
export const EARLY_SIGNAL_MAX_AGE_MS = 10_000;

export class EarlySignals {
  private readonly kept = new Map<string, { at: number; payload: SignalPayload }[]>();

  constructor(private readonly now: () => number = Date.now) {}

  /** Keep a signal from `from`, unless the limits say no (then it is dropped). */
  keep(from: string, payload: SignalPayload): void {
    if (payload.reset) return; // there is no connection to reset yet
    const kept = this.kept.get(from) ?? [];
    if (kept.length === 0 && this.kept.size >= EARLY_SENDERS) return;
    if (kept.length >= EARLY_SIGNALS_PER_MEMBER) return;
    kept.push({ at: this.now(), payload });
    this.kept.set(from, kept);
  }

  /** What `from` sent, oldest first, leaving out what is too old; forgets it all. */
  take(from: string): SignalPayload[] {
    const kept = this.kept.get(from) ?? [];
    this.kept.delete(from);
    const oldest = this.now() - EARLY_SIGNAL_MAX_AGE_MS;
    return kept.filter(({ at }) => at >= oldest).map(({ payload }) => payload);
  }

  forget(from: string): void {
    this.kept.delete(from);
  }

  clear(): void {
    this.kept.clear();
  }
}
