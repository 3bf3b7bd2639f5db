/**
 * Reactions as this client shows them: each floats over the stage for REACTION_SHOW_MS, and
 * at most MAX_SHOWN_REACTIONS are kept (a burst from a large room pushes out the oldest).
 * Nothing is stored by the server (docs/PROTOCOL.md §3.7): a reaction is seen live or not at
 * all. Pure functions of a clock the caller reads.
 */
import type { Reaction } from "../protocol";

/** A reaction being shown: `from` is a member id, `at` when it arrived (ms). */
export interface ShownReaction {
  readonly key: number;
  readonly from: string;
  readonly reaction: Reaction;
  readonly at: number;
}

/** How long a reaction stays on screen. */
export const REACTION_SHOW_MS = 4_000;
/** The most reactions on screen at once. */
export const MAX_SHOWN_REACTIONS = 30;

/** Every reaction, in the order menus list them, with its emoji and its name in words. */
export const REACTIONS: Readonly<Record<Reaction, { readonly emoji: string; readonly label: string }>> = {
  thumbs_up: { emoji: "👍", label: "Thumbs up" },
  clap: { emoji: "👏", label: "Clap" },
  laugh: { emoji: "😂", label: "Laugh" },
  wow: { emoji: "😮", label: "Wow" },
  heart: { emoji: "❤️", label: "Heart" },
  party: { emoji: "🎉", label: "Party" },
  thinking: { emoji: "🤔", label: "Thinking" },
  wave: { emoji: "👋", label: "Wave" },
};

export const REACTION_NAMES = Object.keys(REACTIONS) as readonly Reaction[];

/** Those still on screen at `now`. */
export function expireReactions(
  shown: readonly ShownReaction[],
  now: number,
  showMs = REACTION_SHOW_MS,
): readonly ShownReaction[] {
  const kept = shown.filter((r) => now < r.at + showMs);
  return kept.length === shown.length ? shown : kept;
}

/** `shown` with `added` at the end, without what expired, and the oldest beyond `max` dropped. */
export function addReaction(
  shown: readonly ShownReaction[],
  added: ShownReaction,
  max = MAX_SHOWN_REACTIONS,
  showMs = REACTION_SHOW_MS,
): readonly ShownReaction[] {
  return [...expireReactions(shown, added.at, showMs), added].slice(-max);
}

/** When the next one leaves the screen (ms, same clock as `at`), or null when none is shown. */
export function nextExpiry(shown: readonly ShownReaction[], showMs = REACTION_SHOW_MS): number | null {
  let first: number | null = null;
  for (const r of shown) if (first === null || r.at + showMs < first) first = r.at + showMs;
  return first;
}
