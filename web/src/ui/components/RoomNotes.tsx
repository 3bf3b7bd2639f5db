import type { RoomNote } from "../../room/hosting";
import { useFreshNotes } from "../hooks/notes";

/**
 * What hosts did ("Ann locked the meeting"), announced politely and faded a few seconds
 * later. The region is always in the page so screen readers hear what is added to it.
 */
export function RoomNotes({ notes }: { notes: readonly RoomNote[] }) {
  const fresh = useFreshNotes(notes);
  return (
    <div className="room-notes" role="status" aria-live="polite" data-testid="room-notes">
      {fresh.map((note) => (
        <div
          key={note.id}
          className={`room-note ${note.personal ? "personal" : ""}`}
          data-testid="room-note"
          data-personal={note.personal ? "true" : "false"}
        >
          {note.text}
        </div>
      ))}
    </div>
  );
}
