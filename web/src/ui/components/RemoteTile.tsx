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
      media={member.media}
      camera={member.camera}
      screen={member.screen}
      speaking={heard > SPEAKING}
      connecting={member.connection !== "connected" && member.connection !== "disconnected"}
      sinkId={sinkId}
    />
  );
}
