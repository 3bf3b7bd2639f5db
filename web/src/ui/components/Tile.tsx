import type { Media } from "../../protocol";
import { Avatar } from "./Avatar";
import { ordinal } from "../words";
import { Icon } from "./Icon";
import { VideoView } from "./VideoView";

export interface TileProps {
  /** The name as the person chose it (the tile's `data-member`). */
  name: string;
  /** The name as shown, told apart from others of the same name ("Sam (2)"); the name by default. */
  label?: string;
  host?: boolean;
  /** Place among the raised hands (1 is the earliest), null when the hand is down. */
  hand?: number | null;
  media: Media;
  camera: MediaStream | null;
  screen: MediaStream | null;
  speaking: boolean;
  self?: boolean;
  /** A short note over the video: "Connecting…", "Reconnecting…", "Restoring media…". */
  status?: string | null;
  /** Drawn as a problem rather than a passing state. */
  statusProblem?: boolean;
  sinkId?: string;
}

/** One person in the grid: their video (or screen), name, mic state and speaking ring. */
export function Tile({
  name,
  label = name,
  host = false,
  hand = null,
  media,
  camera,
  screen,
  speaking,
  self = false,
  status = null,
  statusProblem = false,
  sinkId,
}: TileProps) {
  const sharing = media.screen && screen !== null;
  const who = self ? `${label} (you)` : label;
  const roles = `${host ? ", host" : ""}${hand !== null ? `, hand raised (${ordinal(hand)})` : ""}`;
  return (
    <figure
      className={`tile ${speaking && media.mic ? "speaking" : ""} ${sharing ? "sharing" : ""}`}
      data-testid="tile"
      data-member={name}
      data-label={label}
      data-host={host ? "true" : "false"}
      data-hand={hand ?? ""}
      data-self={self ? "true" : "false"}
      data-mic={media.mic ? "on" : "off"}
      data-camera={media.camera ? "on" : "off"}
      data-screen={sharing ? "on" : "off"}
      data-status={status ?? ""}
      aria-label={`${who}${roles}${media.mic ? "" : ", microphone muted"}${media.camera ? "" : ", camera off"}${sharing ? ", sharing screen" : ""}${status ? `, ${status}` : ""}`}
    >
      {sharing && (
        <VideoView
          stream={screen}
          self={self}
          kind="screen"
          className="video-screen"
          label={`${who}: screen`}
        />
      )}
      <VideoView
        stream={camera}
        self={self}
        sinkId={sinkId}
        className={`${sharing ? "video-pip" : ""} ${media.camera ? "" : "video-hidden"}`}
        label={`${who}: camera`}
      />
      {!media.camera && !sharing && (
        <div className="tile-avatar">
          <Avatar name={name} />
        </div>
      )}
      {status && (
        <div className={`tile-status ${statusProblem ? "problem" : ""}`} data-testid="tile-status">
          {status}
        </div>
      )}
      <figcaption className="tile-name">
        {!media.mic && (
          <span className="mic-off" data-testid="mic-off" title="Microphone muted">
            <Icon name="micOff" size={16} />
            <span className="visually-hidden">Microphone muted</span>
          </span>
        )}
        {!media.camera && (
          <span className="mic-off" data-testid="camera-off" title="Camera off">
            <Icon name="cameraOff" size={16} />
            <span className="visually-hidden">Camera off</span>
          </span>
        )}
        <span className="text-truncate">{who}</span>
        {host && (
          <span className="badge text-bg-secondary role-badge" data-testid="tile-host">
            Host
          </span>
        )}
        {sharing && <span className="badge text-bg-primary ms-1">Presenting</span>}
      </figcaption>
      {hand !== null && (
        <div className="tile-hand" data-testid="tile-hand" title={`Hand raised (${ordinal(hand)})`}>
          <Icon name="hand" size={18} />
          <span aria-hidden="true">{hand}</span>
          <span className="visually-hidden">Hand raised, {ordinal(hand)}</span>
        </div>
      )}
    </figure>
  );
}
