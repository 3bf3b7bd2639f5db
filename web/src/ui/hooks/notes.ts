import { useEffect, useState } from "react";
import type { RoomNote } from "../../room/hosting";

/** How long a note stays up; a note about this side itself stays a little longer. */
export const NOTE_MS = 6_000;
export const PERSONAL_NOTE_MS = 10_000;

const lifetime = (note: RoomNote) => (note.personal ? PERSONAL_NOTE_MS : NOTE_MS);

/** The notes still fresh enough to show; re-renders when the next one should fade. */
export function useFreshNotes(notes: readonly RoomNote[]): readonly RoomNote[] {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const ends = notes.map((n) => n.at + lifetime(n)).filter((end) => end > now);
    if (ends.length === 0) return;
    const timer = setTimeout(() => setNow(Date.now()), Math.max(0, Math.min(...ends) - Date.now()) + 20);
    return () => clearTimeout(timer);
  }, [notes, now]);
  return notes.filter((n) => n.at + lifetime(n) > now);
}
