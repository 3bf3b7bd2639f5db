import { useEffect, useState } from "react";
import type { Participant } from "../../room/session";

/** How long "<name> joined" stays before it fades out (ms); app.css fades it over the end. */
export const ARRIVAL_MS = 5_000;

export interface Arrival {
  /** "Ann joined. Bob left", or "" once it has faded. */
  readonly text: string;
  /** Changes with every new note (restarts its fade). */
  readonly key: number;
}

/**
 * "<name> joined" / "<name> left" whenever the member list changes while `ready` (joined):
 * not for the list that comes with joining. The text is cleared ARRIVAL_MS later.
 */
export function useArrivals(members: readonly Participant[], ready = true): Arrival {
  const [previous, setPrevious] = useState({ members, ready });
  const [note, setNote] = useState<Arrival>({ text: "", key: 0 });
  if (previous.members !== members || previous.ready !== ready) {
    // Derived from the last render's list (React's "storing information from previous renders").
    setPrevious({ members, ready });
    if (previous.ready && ready) {
      const before = new Map(previous.members.map((m) => [m.id, m.label]));
      const now = new Set(members.map((m) => m.id));
      const joined = members.filter((m) => !before.has(m.id)).map((m) => `${m.label} joined`);
      const left = [...before].filter(([id]) => !now.has(id)).map(([, name]) => `${name} left`);
      const changes = [...joined, ...left];
      if (changes.length > 0) setNote((n) => ({ text: changes.join(". "), key: n.key + 1 }));
    }
  }
  useEffect(() => {
    if (note.text === "") return;
    const timer = setTimeout(() => setNote((n) => (n.key === note.key ? { ...n, text: "" } : n)), ARRIVAL_MS);
    return () => clearTimeout(timer);
  }, [note]);
  return note;
}
