import { useEffect, useRef, useState, type CSSProperties, type ReactNode, type RefObject } from "react";
import type { Media } from "../../protocol";
import type { Rect, TilePlace } from "../../room/layout";
import { useShownWidth } from "../hooks/videoWidth";
import { Avatar } from "./Avatar";
import { ordinal } from "../words";
import { Icon } from "./Icon";
import { SignedInMark } from "./SignedInMark";
import { VideoView } from "./VideoView";

/** Where the stage put a tile, and what its buttons do. */
export interface Placement {
  place?: TilePlace;
  rect?: Rect;
  pinned?: boolean;
  /** Pin or unpin this tile as the large one. */
  onPin?: () => void;
}

export interface TileProps extends Placement {
  /** The name as the person chose it (the tile's `data-member`). */
  name: string;
  /** The name as shown, told apart from others of the same name ("Sam (2)"); the name by default. */
  label?: string;
  /** Signed in to an account: a mark beside the name (SignedInMark). */
  signedIn?: boolean;
  host?: boolean;
  /** Place among the raised hands (1 is the earliest), null when the hand is down. */
  hand?: number | null;
  media: Media;
  camera: MediaStream | null;
  /** They share a screen now (shown in a tile of its own). */
  sharing?: boolean;
  speaking: boolean;
  self?: boolean;
  /** A short note over the video: "Connecting…", "Reconnecting…", "Restoring media…". */
  status?: string | null;
  /** Drawn as a problem rather than a passing state. */
  statusProblem?: boolean;
  sinkId?: string;
  /** Drawn in the top-left corner (the connection quality indicator). */
  indicator?: ReactNode;
  /** Own tile only: hide the self view into a small chip. */
  onMinimise?: () => void;
  /**
   * Told how wide the tile shows the camera's picture (device px; 0: not shown) whenever that
   * changes, and null when the tile goes: a room on the SFU receives the layer that needs.
   */
  onVideoWidth?: (width: number | null) => void;
}

const placed = (rect: Rect | undefined): CSSProperties | undefined =>
  rect && { left: rect.x, top: rect.y, width: rect.width, height: rect.height };

/** Whether `ref`'s element is the fullscreen element, and a toggle (Fullscreen API). */
function useFullscreen(ref: RefObject<HTMLElement | null>): [boolean, () => void] {
  const [full, setFull] = useState(false);
  useEffect(() => {
    const sync = () =>
      setFull(document.fullscreenElement !== null && document.fullscreenElement === ref.current);
    document.addEventListener("fullscreenchange", sync);
    return () => document.removeEventListener("fullscreenchange", sync);
  }, [ref]);
  useEffect(() => {
    if (!full) return;
    // Browsers leave fullscreen on Escape themselves; where the key reaches the page anyway
    // (synthetic input, some kiosks), leave it here, before the room closes a panel with it.
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || document.fullscreenElement !== ref.current) return;
      event.preventDefault();
      void document.exitFullscreen().catch(() => {});
    };
    document.addEventListener("keydown", onKey, true);
    return () => document.removeEventListener("keydown", onKey, true);
  }, [full, ref]);
  const toggle = () => {
    const element = ref.current;
    if (element === null) return;
    if (document.fullscreenElement === element) void document.exitFullscreen().catch(() => {});
    else void element.requestFullscreen?.().catch(() => {});
  };
  return [full, toggle];
}

/** The buttons shown over a tile on hover or keyboard focus: minimise, pin, fullscreen. */
function TileActions({
  who,
  pinned,
  onPin,
  full,
  onFullscreen,
  onMinimise,
}: {
  who: string;
  pinned: boolean;
  onPin?: () => void;
  full: boolean;
  onFullscreen: () => void;
  onMinimise?: () => void;
}) {
  return (
    <div className="tile-actions">
      {onMinimise && !full && (
        <button
          type="button"
          className="tile-action"
          aria-label="Minimise your own view"
          title="Minimise your own view"
          data-testid="self-minimise"
          onClick={onMinimise}
        >
          <Icon name="minimise" size={18} />
        </button>
      )}
      {onPin && !full && (
        <button
          type="button"
          className="tile-action"
          aria-label={`Pin ${who}`}
          title={pinned ? `Unpin ${who}` : `Pin ${who}`}
          aria-pressed={pinned}
          data-testid="tile-pin"
          onClick={onPin}
        >
          <Icon name="pin" size={18} />
        </button>
      )}
      <button
        type="button"
        className="tile-action"
        aria-label={full ? "Leave full screen" : `Show ${who} full screen`}
        title={full ? "Leave full screen (Escape)" : "Full screen"}
        data-testid="tile-fullscreen"
        onClick={onFullscreen}
      >
        <Icon name={full ? "exitFullscreen" : "fullscreen"} size={18} />
      </button>
    </div>
  );
}

/** One person's camera: their video (letterboxed, never cropped), name, mic state and speaking ring. */
export function Tile({
  name,
  label = name,
  signedIn = false,
  host = false,
  hand = null,
  media,
  camera,
  sharing = false,
  speaking,
  self = false,
  status = null,
  statusProblem = false,
  sinkId,
  indicator,
  onMinimise,
  onVideoWidth,
  place = "grid",
  rect,
  pinned = false,
  onPin,
}: TileProps) {
  const ref = useRef<HTMLElement>(null);
  const [full, toggleFull] = useFullscreen(ref);
  useShownWidth(ref, onVideoWidth);
  const who = self ? `${label} (you)` : label;
  const roles = `${signedIn ? ", signed in" : ""}${host ? ", host" : ""}${hand !== null ? `, hand raised (${ordinal(hand)})` : ""}`;
  const heard = speaking && media.mic;
  return (
    <figure
      ref={ref}
      className={`tile ${heard ? "speaking" : ""}`}
      style={placed(rect)}
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
      data-speaking={heard ? "true" : "false"}
      data-pinned={pinned ? "true" : "false"}
      data-place={place}
      aria-label={`${who}${roles}${media.mic ? "" : ", microphone muted"}${media.camera ? "" : ", camera off"}${sharing ? ", sharing screen" : ""}${heard ? ", speaking" : ""}${status ? `, ${status}` : ""}`}
    >
      <VideoView
        stream={camera}
        self={self}
        sinkId={sinkId}
        className={media.camera ? "" : "video-hidden"}
        label={`${who}: camera`}
      />
      {!media.camera && (
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
        {signedIn && <SignedInMark testId="tile-signed-in" />}
        {host && (
          <span className="badge text-bg-secondary role-badge" data-testid="tile-host">
            Host
          </span>
        )}
        {sharing && <span className="badge text-bg-primary ms-1 tile-presenting">Presenting</span>}
      </figcaption>
      <div className="tile-corner">
        {indicator}
        {hand !== null && (
          <div className="tile-hand" data-testid="tile-hand" title={`Hand raised (${ordinal(hand)})`}>
            <Icon name="hand" size={18} />
            <span aria-hidden="true">{hand}</span>
            <span className="visually-hidden">Hand raised, {ordinal(hand)}</span>
          </div>
        )}
      </div>
      <TileActions
        who={who}
        pinned={pinned}
        onPin={onPin}
        full={full}
        onFullscreen={toggleFull}
        onMinimise={onMinimise}
      />
    </figure>
  );
}

export interface ScreenTileProps extends Placement {
  name: string;
  label?: string;
  self?: boolean;
  screen: MediaStream;
}

/** A shared screen, in a tile of its own: shown whole (`object-fit: contain`), never covered. */
export function ScreenTile({
  name,
  label = name,
  self = false,
  screen,
  place = "main",
  rect,
  pinned = false,
  onPin,
}: ScreenTileProps) {
  const ref = useRef<HTMLElement>(null);
  const [full, toggleFull] = useFullscreen(ref);
  const whose = self ? "Your screen" : `${label}'s screen`;
  return (
    <figure
      ref={ref}
      className="tile screen-tile"
      style={placed(rect)}
      data-testid="screen-tile"
      data-member={name}
      data-label={label}
      data-self={self ? "true" : "false"}
      data-pinned={pinned ? "true" : "false"}
      data-place={place}
      aria-label={whose}
    >
      <VideoView stream={screen} self={self} kind="screen" label={whose} />
      <figcaption className="tile-name">
        <Icon name="screen" size={16} />
        <span className="text-truncate">{self ? "You are presenting" : `${label} is presenting`}</span>
      </figcaption>
      <TileActions who={whose} pinned={pinned} onPin={onPin} full={full} onFullscreen={toggleFull} />
    </figure>
  );
}
