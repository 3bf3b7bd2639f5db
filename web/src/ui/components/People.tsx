import type { Participant } from "../../room/session";
import { Avatar } from "./Avatar";
import { Icon } from "./Icon";

/** Everyone in the room, you first, with their mic and camera state. */
export function People({
  selfName,
  self,
  members,
}: {
  selfName: string;
  self: Participant["media"];
  members: readonly Participant[];
}) {
  const rows = [{ id: "self", name: `${selfName} (you)`, media: self }, ...members];
  return (
    <ul className="list-unstyled people" aria-label="Participants">
      {rows.map((p) => (
        <li key={p.id} className="people-row">
          <Avatar name={p.name} size="sm" />
          <span className="flex-grow-1 text-truncate">{p.name}</span>
          <span
            className={p.media.mic ? "text-body-secondary" : "text-danger"}
            title={p.media.mic ? "Microphone on" : "Microphone muted"}
          >
            <Icon name={p.media.mic ? "mic" : "micOff"} size={16} />
            <span className="visually-hidden">{p.media.mic ? "microphone on" : "microphone muted"}</span>
          </span>
          <span
            className={p.media.camera ? "text-body-secondary" : "text-danger"}
            title={p.media.camera ? "Camera on" : "Camera off"}
          >
            <Icon name={p.media.camera ? "camera" : "cameraOff"} size={16} />
            <span className="visually-hidden">{p.media.camera ? "camera on" : "camera off"}</span>
          </span>
        </li>
      ))}
    </ul>
  );
}
