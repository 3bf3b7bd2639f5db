/**
 * Where each tile of a room goes: which layout, which tile is large, and the rectangle of
 * every tile for the stage's measured size. Pure: no DOM, no clock.
 *
 * A tile is either a member's camera or a member's shared screen; both are named by a
 * TileId so that pinning, ordering and placing treat them alike.
 */

export type LayoutMode = "grid" | "speaker" | "presenter";
/** What the person chose in the layout menu; "auto" follows the room. */
export type LayoutChoice = "auto" | "grid" | "speaker";
export type TilePlace = "main" | "strip" | "grid";
export type TileId = `camera:${string}` | `screen:${string}`;

export const cameraTile = (member: string): TileId => `camera:${member}`;
export const screenTile = (member: string): TileId => `screen:${member}`;

/** The stage is narrow at or below this width (px): "auto" then shows one person large. */
export const NARROW_STAGE = 600;
/** Video is 16:9 by default; tiles keep this shape and letterbox anything else. */
export const TILE_ASPECT = 16 / 9;
/** Space between tiles (px). */
export const TILE_GAP = 8;

export interface LayoutInput {
  readonly choice: LayoutChoice;
  /** This side's member id. */
  readonly self: string;
  /** Every member with a camera tile, this side first, then in join order. */
  readonly members: readonly string[];
  /** Members sharing a screen, in the order they started; the newest presents. */
  readonly screens: readonly string[];
  readonly pinned: TileId | null;
  /** The active speaker among the others, null before anyone has spoken. */
  readonly speaker: string | null;
  /** The self view is minimised: its camera tile is left out. */
  readonly selfHidden: boolean;
  /** The stage's width in px. */
  readonly width: number;
}

export interface Layout {
  readonly mode: LayoutMode;
  /** The large tile (speaker and presenter modes); null in the grid. */
  readonly main: TileId | null;
  /** The grid's tiles (grid mode) or the strip beside the main tile, in order. */
  readonly others: readonly TileId[];
}

/**
 * The pin after a member's seat was taken by a newer connection of the same account
 * (`member_joined.replaces`, docs/PROTOCOL.md §2.8): a pinned tile of a member who is gone
 * moves to the tile of the same kind of the member that replaced them. `members` are the
 * present ones with the ids each replaced. Any other pin is returned as it is.
 */
export function followPin(
  pinned: TileId | null,
  members: readonly { readonly id: string; readonly formerIds: readonly string[] }[],
): TileId | null {
  if (pinned === null) return null;
  const screen = pinned.startsWith("screen:");
  const owner = pinned.slice(pinned.indexOf(":") + 1);
  if (members.some((m) => m.id === owner)) return pinned;
  const heir = members.find((m) => m.formerIds.includes(owner));
  if (heir === undefined) return pinned;
  return screen ? screenTile(heir.id) : cameraTile(heir.id);
}

/**
 * Choose the layout. In order:
 * 1. A pinned tile that still exists is the main tile: a pinned screen gives the presenter
 *    layout, a pinned camera the speaker layout (whatever the choice).
 * 2. Someone shares a screen (this side included): the presenter layout with the newest
 *    screen as main — unless the person explicitly chose the grid, which then holds the
 *    screens first.
 * 3. "speaker", or "auto" on a narrow stage: the active speaker large (else the first other
 *    member, else this side).
 * 4. Otherwise the grid.
 * The presenter's own camera is always a tile of its own in the strip, never over a screen.
 */
export function chooseLayout(input: LayoutInput): Layout {
  const cameras = input.members
    .filter((m) => !(input.selfHidden && m === input.self))
    .map(cameraTile);
  const screens = input.screens.map(screenTile);
  const all: TileId[] = [...screens, ...cameras];
  const without = (main: TileId) => all.filter((t) => t !== main);

  if (input.pinned !== null && all.includes(input.pinned)) {
    const mode = input.pinned.startsWith("screen:") ? "presenter" : "speaker";
    return { mode, main: input.pinned, others: without(input.pinned) };
  }
  const newest = screens.at(-1);
  if (newest !== undefined && input.choice !== "grid") {
    // The newest screen large; the older screens (newest first), then the cameras, in the strip.
    return { mode: "presenter", main: newest, others: [...screens.slice(0, -1).reverse(), ...cameras] };
  }
  const wantsSpeaker = input.choice === "speaker" || (input.choice === "auto" && input.width <= NARROW_STAGE);
  if (wantsSpeaker) {
    const others = input.members.filter((m) => m !== input.self);
    const present = (m: string | null): m is string => m !== null && others.includes(m);
    const focus = present(input.speaker) ? input.speaker : (others[0] ?? input.self);
    const main = cameraTile(focus);
    const shown = all.includes(main) ? main : all[0];
    if (shown !== undefined) return { mode: "speaker", main: shown, others: without(shown) };
  }
  return { mode: "grid", main: null, others: all };
}

/** The screens in the order they started: still sharing keep their place, new ones go last. */
export function shareOrder(before: readonly string[], sharing: readonly string[]): string[] {
  const now = new Set(sharing);
  const kept = before.filter((m) => now.has(m));
  return [...kept, ...sharing.filter((m) => !kept.includes(m))];
}

export interface Size {
  readonly width: number;
  readonly height: number;
}

export interface Rect extends Size {
  readonly x: number;
  readonly y: number;
}

export interface GridFit {
  readonly cols: number;
  readonly rows: number;
  /** One tile's size: always `aspect` wide for 1 high, never larger than its cell. */
  readonly tile: Size;
}

/**
 * The number of columns and rows that makes `count` tiles of the given aspect as large as
 * possible inside `area`, with `gap` between them. Ties go to fewer columns.
 */
export function fitGrid(count: number, area: Size, gap = TILE_GAP, aspect = TILE_ASPECT): GridFit {
  let best: GridFit = { cols: 1, rows: Math.max(1, count), tile: { width: 0, height: 0 } };
  for (let cols = 1; cols <= Math.max(1, count); cols++) {
    const rows = Math.ceil(count / cols);
    const cellWidth = (area.width - gap * (cols - 1)) / cols;
    const cellHeight = (area.height - gap * (rows - 1)) / rows;
    const width = Math.max(0, Math.min(cellWidth, cellHeight * aspect));
    if (width > best.tile.width) best = { cols, rows, tile: { width, height: width / aspect } };
  }
  return best;
}

/** `count` tiles of `fit` laid out row by row, centred in `area` (the last row too). */
function gridRects(count: number, fit: GridFit, area: Rect, gap: number): Rect[] {
  // Every rectangle exists: `fit` has cols × rows ≥ count cells.
  const { width, height } = fit.tile;
  const blockHeight = fit.rows * height + (fit.rows - 1) * gap;
  const top = area.y + (area.height - blockHeight) / 2;
  const rects: Rect[] = [];
  for (let row = 0; row < fit.rows; row++) {
    const inRow = Math.min(fit.cols, count - row * fit.cols);
    const rowWidth = inRow * width + (inRow - 1) * gap;
    const left = area.x + (area.width - rowWidth) / 2;
    for (let col = 0; col < inRow; col++) {
      rects.push({ x: left + col * (width + gap), y: top + row * (height + gap), width, height });
    }
  }
  return rects;
}

export interface Arrangement {
  /** Where the strip is, when there is one. */
  readonly strip: "right" | "bottom" | null;
  readonly tiles: ReadonlyMap<TileId, { readonly place: TilePlace; readonly rect: Rect }>;
}

/** The band a strip may take: a fifth of the stage, within these bounds (px). */
const STRIP_WIDTH = { min: 112, max: 240, share: 0.2 };
const STRIP_HEIGHT = { min: 63, max: 135, share: 0.2 };

const NOWHERE: Rect = { x: 0, y: 0, width: 0, height: 0 };

const clamp = (value: number, low: number, high: number) => Math.min(high, Math.max(low, value));

/** How large 16:9 content can be shown inside a rectangle (its fitted area). */
const shownArea = (r: Size) => {
  const width = Math.min(r.width, r.height * TILE_ASPECT);
  return width * (width / TILE_ASPECT);
};

interface StripPlan {
  side: "right" | "bottom";
  main: Rect;
  strip: Rect[];
}

/** The main tile is at most this tall for its width: a 4:3 camera (and so 16:9) fills it. */
const MAIN_TALLEST = 3 / 4;

function stripOn(side: "right" | "bottom", count: number, stage: Size, gap: number): StripPlan {
  if (side === "right") {
    const band = clamp(Math.round(stage.width * STRIP_WIDTH.share), STRIP_WIDTH.min, STRIP_WIDTH.max);
    const fit = fitGrid(count, { width: band, height: stage.height }, gap);
    const used = fit.cols * fit.tile.width + (fit.cols - 1) * gap;
    const mainWidth = Math.max(0, stage.width - used - gap);
    const area = { x: mainWidth + gap, y: 0, width: used, height: stage.height };
    return { side, main: { x: 0, y: 0, width: mainWidth, height: stage.height }, strip: gridRects(count, fit, area, gap) };
  }
  const band = clamp(Math.round(stage.height * STRIP_HEIGHT.share), STRIP_HEIGHT.min, STRIP_HEIGHT.max);
  let fit = fitGrid(count, { width: stage.width, height: band }, gap);
  let used = fit.rows * fit.tile.height + (fit.rows - 1) * gap;
  let mainHeight = Math.max(0, stage.height - used - gap);
  let top = 0;
  const tallest = Math.round(stage.width * MAIN_TALLEST);
  if (mainHeight > tallest) {
    // A main tile taller than any picture it shows (a phone held upright) is empty bands:
    // the strip gets that height, for larger tiles or more rows of them, and what neither
    // can use is split above and below (the whole is centred).
    fit = fitGrid(count, { width: stage.width, height: stage.height - tallest - gap }, gap);
    used = fit.rows * fit.tile.height + (fit.rows - 1) * gap;
    top = Math.max(0, Math.floor((stage.height - tallest - gap - used) / 2));
    mainHeight = tallest;
  }
  const area = { x: 0, y: top + mainHeight + gap, width: stage.width, height: used };
  const main = { x: 0, y: top, width: stage.width, height: mainHeight };
  return { side, main, strip: gridRects(count, fit, area, gap) };
}

/**
 * The rectangle of every tile of `layout` on a stage of `stage` size. The grid maximises
 * 16:9 tiles; with a main tile, the strip goes to the right or along the bottom, whichever
 * leaves the main tile more room to show 16:9 content (ties: right).
 */
export function arrange(layout: Layout, stage: Size, gap = TILE_GAP): Arrangement {
  const tiles = new Map<TileId, { place: TilePlace; rect: Rect }>();
  if (layout.main === null) {
    const fit = fitGrid(layout.others.length, stage, gap);
    const rects = gridRects(layout.others.length, fit, { x: 0, y: 0, ...stage }, gap);
    layout.others.forEach((id, i) => tiles.set(id, { place: "grid", rect: rects[i] ?? NOWHERE }));
    return { strip: null, tiles };
  }
  if (layout.others.length === 0) {
    tiles.set(layout.main, { place: "main", rect: { x: 0, y: 0, ...stage } });
    return { strip: null, tiles };
  }
  const right = stripOn("right", layout.others.length, stage, gap);
  const bottom = stripOn("bottom", layout.others.length, stage, gap);
  const plan = shownArea(bottom.main) > shownArea(right.main) ? bottom : right;
  tiles.set(layout.main, { place: "main", rect: plan.main });
  layout.others.forEach((id, i) => tiles.set(id, { place: "strip", rect: plan.strip[i] ?? NOWHERE }));
  return { strip: plan.side, tiles };
}

/** One round control plus the space after it (px), as app.css draws them. */
export const CONTROL_SLOT = 56;
/** At or below this bar width only the essential controls stay; the rest go to "More". */
export const NARROW_BAR = 600;

/**
 * How many controls, given in priority order (the `essential` first), stay in one row of
 * `width` px; the others go into a "More" menu, which takes a slot of its own.
 */
export function controlsInBar(count: number, essential: number, width: number, slot = CONTROL_SLOT): number {
  if (width <= NARROW_BAR) return Math.min(count, essential);
  const room = Math.floor(width / slot);
  if (count <= room) return count;
  return clamp(room - 1, Math.min(count, essential), count);
}
