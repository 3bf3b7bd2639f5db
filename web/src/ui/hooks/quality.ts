import { useCallback, useSyncExternalStore } from "react";
import { QualityTracker, type PeerQuality, type QualitySample } from "../../rtc/quality";

/**
 * What quality is read from: a room session's media, the mesh's or the SFU's
 * (`RoomSession.mediaStats()`, keyed by member id).
 */
export interface QualitySource {
  mediaStats(): Promise<Readonly<Record<string, QualitySample>>>;
}

const NONE: ReadonlyMap<string, PeerQuality> = new Map();

/**
 * Samples a source every `intervalMs` while anyone listens, and keeps the latest quality per
 * member. Every listener of one source and interval shares one poll, so the tiles and the
 * statistics panel together cost one `getStats()` per connection per interval.
 */
export class QualityPoll {
  private tracker = new QualityTracker();
  private readonly listeners = new Set<() => void>();
  private timer: ReturnType<typeof setInterval> | null = null;
  private busy = false;
  private current: ReadonlyMap<string, PeerQuality> = NONE;

  constructor(
    private readonly source: QualitySource,
    private readonly intervalMs: number,
  ) {}

  get snapshot(): ReadonlyMap<string, PeerQuality> {
    return this.current;
  }

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    if (this.timer === null) {
      // Deltas start afresh: a sample from before a pause would average over the pause.
      this.tracker = new QualityTracker();
      this.timer = setInterval(() => void this.sample(), this.intervalMs);
      void this.sample();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size > 0 || this.timer === null) return;
      clearInterval(this.timer);
      this.timer = null;
    };
  }

  /** One round of samples; skipped while the previous one is still out (a slow getStats). */
  private async sample(): Promise<void> {
    if (this.busy) return;
    this.busy = true;
    try {
      const samples = await this.source.mediaStats();
      if (this.timer === null) return; // stopped meanwhile
      this.current = this.tracker.update(samples);
      for (const listener of [...this.listeners]) listener();
    } catch (error) {
      console.warn("salon: getStats failed", error);
    } finally {
      this.busy = false;
    }
  }
}

const polls = new WeakMap<QualitySource, Map<number, QualityPoll>>();

/** The shared poll for a source and interval, created on first use; it goes with the source. */
export function qualityPoll(source: QualitySource, intervalMs: number): QualityPoll {
  let byInterval = polls.get(source);
  if (byInterval === undefined) {
    byInterval = new Map();
    polls.set(source, byInterval);
  }
  let poll = byInterval.get(intervalMs);
  if (poll === undefined) {
    poll = new QualityPoll(source, intervalMs);
    byInterval.set(intervalMs, poll);
  }
  return poll;
}

/**
 * Connection quality per remote member id, refreshed every `intervalMs` (once a second by
 * default) while the component is mounted. Empty until the first sample is in.
 */
export function useQuality(session: QualitySource, intervalMs = 1000): ReadonlyMap<string, PeerQuality> {
  const poll = qualityPoll(session, intervalMs);
  const subscribe = useCallback((listener: () => void) => poll.subscribe(listener), [poll]);
  return useSyncExternalStore(subscribe, () => poll.snapshot);
}
