/**
 * A room's chat as this client holds it: delivered entries in `seq` order, each shown once,
 * and what this side sent that the server has not yet given back.
 *
 * Chat is stored exactly once per client id (docs/PROTOCOL.md, "Chat exactly once"): a message
 * whose socket died under it is sent again with the same id after a resume or a rejoin, and
 * the server stores it only if it had not already. It is acknowledged when a delivered entry
 * carries its id as `client_id`.
 */
import type { ChatEntry } from "../protocol";

export interface UnsentChat {
  readonly id: string;
  readonly text: string;
}

const ID_BYTES = 12; // 96 bits: 16 base64url characters, no padding

/** A random client id for one chat message: 16 base64url characters. */
export function newChatId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(ID_BYTES));
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, "-")
    .replace(/\//g, "_");
}

export class ChatLog {
  private list: readonly ChatEntry[] = [];
  private readonly seqs = new Set<number>();
  private readonly waiting = new Map<string, string>(); // client id → text, oldest first
  private heldUpTo = 0;

  get entries(): readonly ChatEntry[] {
    return this.list;
  }

  /** Sent, not yet acknowledged, oldest first. */
  get unsent(): readonly UnsentChat[] {
    return [...this.waiting].map(([id, text]) => ({ id, text }));
  }

  /**
   * The last `seq` this side has, or was told it need not fetch (`joined.last_seq` when the
   * join carried less history): `history {since}` starts here.
   */
  get lastSeq(): number {
    return this.heldUpTo;
  }

  /** A room joined afresh: forget its entries, but keep what waits to be sent. */
  reset(lastSeq = 0): void {
    this.list = [];
    this.seqs.clear();
    this.heldUpTo = lastSeq;
  }

  /** The newest seq the room has (joined.last_seq): older ones are not fetched. */
  skipTo(lastSeq: number): void {
    this.heldUpTo = Math.max(this.heldUpTo, lastSeq);
  }

  /**
   * Merge delivered entries; acknowledge this side's own. Returns whether anything changed
   * (an entry shown, or an unsent one acknowledged).
   */
  add(entries: readonly ChatEntry[]): boolean {
    let changed = false;
    for (const entry of entries) {
      if (entry.client_id != null && this.waiting.delete(entry.client_id)) changed = true;
    }
    const fresh = entries.filter((e) => !this.seqs.has(e.seq));
    if (fresh.length === 0) return changed;
    for (const entry of fresh) {
      this.seqs.add(entry.seq);
      this.heldUpTo = Math.max(this.heldUpTo, entry.seq);
    }
    this.list = [...this.list, ...fresh].sort((a, b) => a.seq - b.seq);
    return true;
  }

  /** A message this side is about to send: its client id. */
  draft(text: string): string {
    const id = newChatId();
    this.waiting.set(id, text);
    return id;
  }

  /** The server refused it (too long, rate limited): sending it again would not help. */
  drop(id: string): boolean {
    return this.waiting.delete(id);
  }
}
