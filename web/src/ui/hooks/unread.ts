import { useState } from "react";
import type { ChatEntry } from "../../protocol";
import { readUpTo, unreadAfter } from "../../room/chat";

/**
 * How many messages from others arrived while the chat panel was closed. The history a join
 * brings counts as read; opening the panel reads everything, and the count stays at 0 for
 * what was shown (src/room/chat.ts, `readUpTo`).
 */
export function useUnread(chat: readonly ChatEntry[], open: boolean, selfId: string): number {
  const newest = chat.at(-1)?.seq ?? 0;
  const [seenSeq, setSeenSeq] = useState(newest);
  const read = readUpTo(seenSeq, newest, open);
  if (read !== seenSeq) setSeenSeq(read);
  return open ? 0 : unreadAfter(chat, read, selfId);
}
