import { useState } from "react";
import type { Participant } from "../../room/session";

/** "<name> joined" / "<name> left" whenever the member list changes after the first render. */
export function useArrivals(members: readonly Participant[]): string {
  const [previous, setPrevious] = useState(members);
  const [note, setNote] = useState("");
  if (previous !== members) {
    // Derived from the last render's list (React's "storing information from previous renders").
    const before = new Map(previous.map((m) => [m.id, m.label]));
    const now = new Set(members.map((m) => m.id));
    const joined = members.filter((m) => !before.has(m.id)).map((m) => `${m.label} joined`);
    const left = [...before].filter(([id]) => !now.has(id)).map(([, name]) => `${name} left`);
    const changes = [...joined, ...left];
    setPrevious(members);
    if (changes.length > 0) setNote(changes.join(". "));
  }
  return note;
}
