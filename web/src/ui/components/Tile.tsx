import type { Media } from "../../protocol";
import { Avatar } from "./Avatar";
import { Icon } from "./Icon";
import { VideoView } from "./VideoView";

export interface TileProps {
  name: string;
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
  const who = self ? `${name} (you)` : name;
  return (
    <figure
      className={`tile ${speaking && media.mic ? "speaking" : ""} ${sharing ? "sharing" : ""}`}
      data-testid="tile"
      data-member={name}
      data-self={self ? "true" : "false"}
      data-mic={media.mic ? "on" : "off"}
      data-camera={media.camera ? "on" : "off"}
      data-screen={sharing ? "on" : "off"}
      data-status={status ?? ""}
      aria-label={`${who}${media.mic ? "" : ", microphone muted"}${media.camera ? "" : ", camera off"}${sharing ? ", sharing screen" : ""}${status ? `, ${status}` : ""}`}
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
        {sharing && <span className="badge text-bg-primary ms-1">Presenting</span>}
      </figcaption>
    </figure>
  );
}
