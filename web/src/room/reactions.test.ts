import { describe, expect, it } from "vitest";
import {
  MAX_SHOWN_REACTIONS,
  REACTION_NAMES,
  REACTION_SHOW_MS,
  addReaction,
  expireReactions,
  nextExpiry,
  type ShownReaction,
} from "./reactions";

const shown = (key: number, at: number): ShownReaction => ({ key, from: "m", reaction: "clap", at });

describe("reactions on screen", () => {
  it("keep each for REACTION_SHOW_MS, then drop it", () => {
    const list = [shown(1, 0), shown(2, 1_000)];
    expect(expireReactions(list, REACTION_SHOW_MS - 1).map((r) => r.key)).toEqual([1, 2]);
    expect(expireReactions(list, REACTION_SHOW_MS).map((r) => r.key)).toEqual([2]);
    expect(expireReactions(list, REACTION_SHOW_MS + 1_000)).toEqual([]);
  });

  it("return the same list when nothing expired (no needless re-render)", () => {
    const list = [shown(1, 0)];
    expect(expireReactions(list, 10)).toBe(list);
  });

  it("keep at most MAX_SHOWN_REACTIONS, dropping the oldest", () => {
    let list: readonly ShownReaction[] = [];
    for (let key = 1; key <= MAX_SHOWN_REACTIONS + 5; key++) list = addReaction(list, shown(key, key));
    expect(list).toHaveLength(MAX_SHOWN_REACTIONS);
    expect(list[0]?.key).toBe(6);
    expect(list.at(-1)?.key).toBe(MAX_SHOWN_REACTIONS + 5);
  });

  it("drop expired ones when a new one comes", () => {
    const list = addReaction([shown(1, 0), shown(2, 3_000)], shown(3, REACTION_SHOW_MS + 10));
    expect(list.map((r) => r.key)).toEqual([2, 3]);
  });

  it("say when the next one leaves", () => {
    expect(nextExpiry([])).toBeNull();
    expect(nextExpiry([shown(1, 2_000), shown(2, 500)])).toBe(500 + REACTION_SHOW_MS);
  });

  it("name the eight reactions of the protocol", () => {
    expect(REACTION_NAMES).toEqual(["thumbs_up", "clap", "laugh", "wow", "heart", "party", "thinking", "wave"]);
  });
});
