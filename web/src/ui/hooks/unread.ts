import { useState } from "react";
import type { ChatEntry } from "../../protocol";

/** How many messages from others arrived while the chat panel was closed. */
export function useUnread(chat: readonly ChatEntry[], open: boolean, selfId: string): number {
  const newest = chat.at(-1)?.seq ?? 0;
  const [seenSeq, setSeenSeq] = useState(newest); // history on join counts as read
  if (open && seenSeq !== newest) setSeenSeq(newest);
  if (open) return 0;
  return chat.filter((e) => e.seq > seenSeq && e.from !== selfId).length;
}
