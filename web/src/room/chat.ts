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

  /** Whether `id` is a message sent and not acknowledged yet. */
  isWaiting(id: string): boolean {
    return this.waiting.has(id);
  }

  /** The server refused it (too long, say): sending it again would not help. */
  drop(id: string): boolean {
    return this.waiting.delete(id);
  }
}

/** What a key press in the message box does: send it, or let the box take the key. */
export type ChatKeyAction = "send" | "newline" | null;

/** The parts of a keyboard event the message box looks at. */
export interface ChatKey {
  readonly key: string;
  readonly shiftKey: boolean;
  readonly altKey: boolean;
  readonly ctrlKey: boolean;
  readonly metaKey: boolean;
  /** An input method (Japanese, Chinese, …) is composing: its Enter confirms the word. */
  readonly isComposing: boolean;
}

/**
 * Enter sends, Shift+Enter starts a new line (the box's own behaviour: "newline" means let it
 * happen), Ctrl/⌘+Enter sends too. An Enter that confirms an input method's composition is
 * the input method's.
 */
export function chatKeyAction(key: ChatKey): ChatKeyAction {
  if (key.key !== "Enter" || key.isComposing) return null;
  if (key.shiftKey) return "newline";
  if (key.altKey) return null;
  return "send";
}

/** How the server measures a message (src/salon/core/validate.py): code points after NFC. */
export function chatLength(text: string): number {
  return [...text.normalize("NFC")].length;
}

/**
 * Messages from others after `seenSeq`: what is unread when the chat was last open with
 * `seenSeq` the newest entry shown.
 */
export function unreadAfter(chat: readonly ChatEntry[], seenSeq: number, selfId: string): number {
  let count = 0;
  for (const entry of chat) if (entry.seq > seenSeq && entry.from !== selfId) count++;
  return count;
}

/**
 * The newest seq read, after a render with the chat `open` or not: an open chat reads up to
 * `newest`; a log started afresh (another room, so lower seqs) counts as read up to `newest`.
 */
export function readUpTo(seenSeq: number, newest: number, open: boolean): number {
  return open || newest < seenSeq ? newest : seenSeq;
}

/** A piece of a chat message: text, or a web address (shown as `text`, opening `href`). */
export type ChatPart =
  | { readonly kind: "text"; readonly text: string }
  | { readonly kind: "link"; readonly text: string; readonly href: string };

/**
 * Characters that reorder what follows them on screen (Unicode Bidirectional Algorithm,
 * UAX #9 §2): embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069, and the
 * marks U+200E, U+200F and U+061C. Inside a link they let the text lie about the target:
 * `…/report` U+202E `fdp.exe` shows as "…/reportexe.pdf" while opening ".exe".
 */
const BIDI = "\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C";
const BIDI_CONTROLS = new RegExp(`[${BIDI}]`, "g");
/**
 * Of those, the ones that reorder a whole run (embeddings, overrides, isolates): in plain
 * text too they could make words look like an address ("moc.knab//:sptth" under U+202E), so
 * they are shown. The marks stay: right-to-left writing uses them, and they reverse nothing.
 */
const RUN_CONTROLS = /[\u202A-\u202E\u2066-\u2069]/g;

/** An address ends at white space, quotes, angle brackets and any bidi control. */
const URL_PATTERN = new RegExp(`https?:\\/\\/[^\\s<>"'${BIDI}]+`, "gi");

/** Closing punctuation that ends a sentence rather than the address ("see https://x.example."). */
const TRAILING = /[.,;:!?'"\u2019\u201D]+$/;

/** `text` with every bidi control (or those `which` matches) shown as a placeholder such as ⟦U+202E⟧. */
export function revealBidiControls(text: string, which: RegExp = BIDI_CONTROLS): string {
  return text.replace(
    which,
    (ch) => `⟦U+${(ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0")}⟧`,
  );
}

/**
 * A message split into text and http(s) links. A link's `text` is what was written with its
 * bidi controls made visible, so it reads in the order it opens; `href` is the parsed,
 * normalised address (punycode host, percent-encoded path: ASCII only). Something that looks
 * like an address but does not parse stays text, its bidi controls made visible too.
 */
export function chatParts(message: string): ChatPart[] {
  const parts: ChatPart[] = [];
  let plain = "";
  let at = 0;
  for (const match of message.matchAll(URL_PATTERN)) {
    const start = match.index;
    let candidate = match[0];
    candidate = candidate.slice(0, candidate.length - (TRAILING.exec(candidate)?.[0].length ?? 0));
    // A ")" closes the sentence's bracket unless the address opened one ("…/Foo_(bar)").
    while (candidate.endsWith(")") && count(candidate, "(") < count(candidate, ")"))
      candidate = candidate.slice(0, -1);
    plain += revealBidiControls(message.slice(at, start), RUN_CONTROLS);
    at = start + candidate.length;
    const href = webHref(candidate);
    if (href === null) {
      plain += revealBidiControls(candidate);
      continue;
    }
    if (plain !== "") parts.push({ kind: "text", text: plain });
    plain = "";
    parts.push({ kind: "link", text: revealBidiControls(candidate), href });
  }
  plain += revealBidiControls(message.slice(at), RUN_CONTROLS);
  if (plain !== "") parts.push({ kind: "text", text: plain });
  return parts;
}

function count(text: string, ch: string): number {
  return text.split(ch).length - 1;
}

/** The normalised address when `candidate` is an http(s) URL, else null. */
function webHref(candidate: string): string | null {
  try {
    const url = new URL(candidate);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}
