/**
 * When to try again after the signaling socket is lost. Pure functions of the attempt number
 * and a random source, so the schedule is testable without a clock.
 *
 * The first attempt is immediate (most losses are a blip: a proxy cut, a Wi-Fi handover),
 * then the delays grow quickly to a steady pace that a server coming back from a restart can
 * absorb from every client at once. Jitter spreads those clients apart so they do not arrive
 * in lockstep (the "thundering herd").
 */

/** Delays before attempts 1 to 4 (attempt 0 is immediate): 0.3 s × n². */
export const RETRY_STEPS_MS = [0, 300, 1_200, 2_700, 4_800] as const;
/** The pace after the steps. */
export const RETRY_EVERY_MS = 7_000;
/** Plus or minus this fraction of a step, and this much around the steady pace. */
const STEP_JITTER = 0.2;
const EVERY_JITTER_MS = 2_000;
/** Spread after a drain's `retry_after_ms`, so a restarted server is not hit all at once. */
export const DRAIN_JITTER_MS = 2_000;

/** The delay before attempt `attempt` (0-based) since the loss; `random` is in [0, 1). */
export function retryDelayMs(attempt: number, random: () => number): number {
  if (attempt <= 0) return 0;
  const step = RETRY_STEPS_MS[attempt];
  const around = (base: number, spread: number) =>
    Math.max(0, Math.round(base + (random() * 2 - 1) * spread));
  return step === undefined ? around(RETRY_EVERY_MS, EVERY_JITTER_MS) : around(step, step * STEP_JITTER);
}

/** The delay before the first attempt after `server_draining {retry_after_ms}`. */
export function drainDelayMs(retryAfterMs: number, random: () => number): number {
  return Math.max(0, retryAfterMs) + Math.round(random() * DRAIN_JITTER_MS);
}
