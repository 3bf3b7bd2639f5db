import type { ReactNode } from "react";
import type { Participant } from "../../room/session";
import { Tile, type Placement } from "./Tile";

/** A remote member's camera tile; `speaking` comes from the audio this side receives. */
export function RemoteTile({
  member,
  speaking,
  sinkId,
  indicator,
  ...placement
}: Placement & {
  member: Participant;
  speaking: boolean;
  sinkId: string;
  indicator?: ReactNode;
}) {
  return (
    <Tile
      name={member.name}
      label={member.label}
      host={member.host}
      hand={member.hand}
      media={member.media}
      camera={member.camera}
      sharing={member.media.screen && member.screen !== null}
      speaking={speaking}
      status={tileStatus(member)}
      statusProblem={member.recovery === "failed"}
      sinkId={sinkId}
      indicator={indicator}
      {...placement}
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
