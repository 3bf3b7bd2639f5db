import { useMemo } from "react";
import type { Participant } from "../../room/session";
import { usePolledLevel } from "../hooks/media";
import { Tile } from "./Tile";

const SPEAKING = 0.04;

/** A remote member's tile, with speaking measured from the audio they send. */
export function RemoteTile({
  member,
  level,
  sinkId,
}: {
  member: Participant;
  level: (id: string) => number;
  sinkId: string;
}) {
  const source = useMemo(() => ({ read: () => level(member.id) }), [level, member.id]);
  const heard = usePolledLevel(member.media.mic ? source : null);
  return (
    <Tile
      name={member.name}
      label={member.label}
      host={member.host}
      hand={member.hand}
      media={member.media}
      camera={member.camera}
      screen={member.screen}
      speaking={heard > SPEAKING}
      status={tileStatus(member)}
      statusProblem={member.recovery === "failed"}
      sinkId={sinkId}
    />
  );
}

/** What the tile says about the connection, most telling first. */
export function tileStatus(member: Participant): string | null {
  if (member.reconnecting) return "Reconnecting…"; // their signaling is away; media may still flow
  if (member.recovery === "failed") return "Media connection lost";
  if (member.recovery !== null) return "Restoring media…"; // an ICE restart or a rebuilt connection
  if (member.connection !== "connected" && member.connection !== "disconnected") return "Connecting…";
  return null;
}
