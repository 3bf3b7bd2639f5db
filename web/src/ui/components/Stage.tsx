import { Icon } from "./Icon";
import { useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import type { Media } from "../../protocol";
import {
  arrange,
  cameraTile,
  chooseLayout,
  followPin,
  screenTile,
  shareOrder,
  type LayoutChoice,
  type Size,
  type TileId,
} from "../../room/layout";
import type { Participant } from "../../room/session";
import type { SpeakerState } from "../../room/speaker";
import { RemoteTile } from "./RemoteTile";
import { ScreenTile, Tile } from "./Tile";

/** This side, as its own tiles show it. */
export interface StageSelf {
  id: string;
  name: string;
  label: string;
  host: boolean;
  hand: number | null;
  media: Media;
  camera: MediaStream | null;
  /** Its own screen share, shown to itself too. */
  screen: MediaStream | null;
}

export interface StageProps {
  self: StageSelf;
  members: readonly Participant[];
  speakers: SpeakerState;
  choice: LayoutChoice;
  sinkId: string;
  /** A member's connection indicator, drawn in their tile's top-left corner. */
  indicator?: (memberId: string) => ReactNode;
  /** Drawn over the tiles (reactions). */
  overlay?: ReactNode;
  /** Members whose media connection did not come up in time (ui/stuck.ts). */
  stuck?: ReadonlySet<string>;
  /**
   * How wide a member's camera tile shows their video (device px; 0: not shown), as it changes;
   * null when the tile goes. On the SFU, it decides which simulcast layer to receive.
   */
  onVideoShown?: (memberId: string, width: number | null) => void;
}

/** The stage's inner size, measured (ResizeObserver) so tiles can be laid out in pixels. */
function useSize(): [React.RefObject<HTMLElement | null>, Size] {
  const ref = useRef<HTMLElement>(null);
  const [size, setSize] = useState<Size>({ width: 0, height: 0 });
  useLayoutEffect(() => {
    const element = ref.current;
    if (element === null) return;
    const measure = () => {
      const width = element.clientWidth;
      const height = element.clientHeight;
      setSize((before) => (before.width === width && before.height === height ? before : { width, height }));
    };
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, size];
}

/** Members sharing a screen, in the order they started (derived from the last render's order). */
function useShareOrder(sharing: readonly string[]): readonly string[] {
  const [order, setOrder] = useState<readonly string[]>(sharing);
  const next = shareOrder(order, sharing);
  const same = next.length === order.length && next.every((id, i) => id === order[i]);
  if (!same) setOrder(next);
  return same ? order : next;
}

/**
 * Everyone's tiles: a grid, the active speaker large, or a shared screen large with the
 * cameras in a strip (chooseLayout). Tiles keep one place in the DOM whatever the layout —
 * only their rectangles change — so videos and a fullscreen tile survive a layout change.
 */
export function Stage({
  self,
  members,
  speakers,
  choice,
  sinkId,
  indicator,
  overlay,
  stuck,
  onVideoShown,
}: StageProps) {
  const [ref, size] = useSize();
  const [pinned, setPinned] = useState<TileId | null>(null);
  // A pinned person who comes back on a new connection of their account stays pinned
  // (state adjusted while rendering, as React advises for state derived from props).
  const heldPin = followPin(pinned, members);
  if (heldPin !== pinned) setPinned(heldPin);
  const [selfHidden, setSelfHidden] = useState(false);
  const toggledSelf = useRef(false);
  useEffect(() => {
    // Keyboard users keep their place: focus moves to the button that undoes what they did.
    if (!toggledSelf.current) return;
    toggledSelf.current = false;
    const testId = selfHidden ? "self-restore" : "self-minimise";
    ref.current?.querySelector<HTMLElement>(`[data-testid="${testId}"]`)?.focus();
  }, [selfHidden, ref]);
  const showSelf = (show: boolean) => {
    toggledSelf.current = true;
    setSelfHidden(!show);
  };
  const ownScreen = self.media.screen ? self.screen : null;
  const screens = new Map<string, { stream: MediaStream; name: string; label: string; self: boolean }>();
  if (ownScreen !== null)
    screens.set(self.id, { stream: ownScreen, name: self.name, label: self.label, self: true });
  for (const m of members) {
    if (m.media.screen && m.screen !== null)
      screens.set(m.id, { stream: m.screen, name: m.name, label: m.label, self: false });
  }
  const order = useShareOrder([...screens.keys()]);
  const layout = chooseLayout({
    choice,
    self: self.id,
    members: [self.id, ...members.map((m) => m.id)],
    screens: order,
    pinned: heldPin,
    speaker: speakers.active,
    selfHidden,
    width: size.width,
  });
  const placed = arrange(layout, size);
  // Before the first measurement tiles get no rectangle (rather than growing from nothing).
  const measured = size.width > 0 && size.height > 0;
  const at = (id: TileId) => {
    const spot = placed.tiles.get(id);
    return {
      place: spot?.place,
      rect: measured ? spot?.rect : undefined,
      pinned: heldPin === id,
      onPin: () => setPinned((before) => (before === id ? null : id)),
    };
  };

  return (
    <main
      ref={ref}
      className="stage"
      data-testid="stage"
      data-layout={layout.mode}
      data-strip={placed.strip ?? ""}
      aria-label="Participants' video"
    >
      {!selfHidden && (
        <Tile
          name={self.name}
          label={self.label}
          host={self.host}
          hand={self.hand}
          media={self.media}
          camera={self.camera}
          sharing={ownScreen !== null}
          speaking={speakers.speaking.has(self.id)}
          self
          onMinimise={() => showSelf(false)}
          {...at(cameraTile(self.id))}
        />
      )}
      {members.map((m) => (
        <RemoteTile
          key={m.id}
          member={m}
          stuck={stuck?.has(m.id) ?? false}
          speaking={speakers.speaking.has(m.id)}
          sinkId={sinkId}
          indicator={indicator?.(m.id)}
          onVideoWidth={onVideoShown && ((width) => onVideoShown(m.id, width))}
          {...at(cameraTile(m.id))}
        />
      ))}
      {[...screens].map(([id, s]) => (
        <ScreenTile
          key={`screen:${id}`}
          name={s.name}
          label={s.label}
          self={s.self}
          screen={s.stream}
          {...at(screenTile(id))}
        />
      ))}
      {selfHidden && (
        <div className="self-chip" data-testid="self-minimised">
          <span className="text-truncate">You{self.media.mic ? "" : " (muted)"}</span>
          <button
            type="button"
            className="btn btn-sm btn-light"
            aria-label="Show your own view"
            title="Show your own view"
            data-testid="self-restore"
            onClick={() => showSelf(true)}
          >
            <Icon name="restore" size={16} />
          </button>
        </div>
      )}
      {overlay}
    </main>
  );
}
