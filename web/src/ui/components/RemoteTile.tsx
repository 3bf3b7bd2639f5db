import type { ReactNode } from "react";
import type { Participant } from "../../room/session";
import { connecting } from "../stuck";
import { Tile, type Placement } from "./Tile";

/**
 * A remote member's camera tile; `speaking` comes from the audio this side receives, or on the
 * SFU from what the SFU hears.
 */
export function RemoteTile({
  member,
  stuck = false,
  speaking,
  sinkId,
  indicator,
  onVideoWidth,
  ...placement
}: Placement & {
  member: Participant;
  /** Still "Connecting…" past the bound (ui/stuck.ts). */
  stuck?: boolean;
  speaking: boolean;
  sinkId: string;
  indicator?: ReactNode;
  /** How wide the tile shows their camera (device px), as it changes; null when it goes. */
  onVideoWidth?: (width: number | null) => void;
}) {
  return (
    <Tile
      name={member.name}
      label={member.label}
      signedIn={member.signedIn}
      host={member.host}
      hand={member.hand}
      media={member.media}
      camera={member.camera}
      sharing={member.media.screen && member.screen !== null}
      speaking={speaking}
      status={tileStatus(member, stuck)}
      statusProblem={member.recovery === "failed" || (stuck && connecting(member))}
      sinkId={sinkId}
      indicator={indicator}
      onVideoWidth={onVideoWidth}
      {...placement}
    />
  );
}

/** What the tile says about the connection, most telling first; `stuck`: connecting too long. */
export function tileStatus(member: Participant, stuck = false): string | null {
  if (member.reconnecting) return "Reconnecting…"; // their signaling is away; media may still flow
  if (member.recovery === "failed") return "Media connection lost";
  if (member.recovery !== null) return "Restoring media…"; // an ICE restart or a rebuilt connection
  if (connecting(member)) return stuck ? "Can't connect" : "Connecting…";
  return null;
}
