/**
 * Which simulcast layer of each member's video this side receives from the SFU (protocol v3,
 * `sfu_quality`), from how large the room shows their camera. Every camera sends two layers
 * to the SFU (sfu.ts): 320 × 240 and 640 × 480. A small tile needs only a small picture, and
 * the SFU then forwards that member's low layer instead of the high one, which
 * spares this side's downlink and decoder. A screen share is sent as one encoding, which the
 * SFU forwards whatever the layer: only the camera's tile counts.
 *
 * Sizes are in device pixels (CSS px × `devicePixelRatio`, which the page measures): on a 2x
 * display a tile 300 CSS px wide shows 600 pixels, which the low layer would only blur.
 *
 * The SFU is told only of changes, per member, once the sizes have been still for
 * LAYER_DEBOUNCE_MS: tiles resize continuously while a window is dragged. A request it
 * refused is made again with the next one sent.
 */
import type { SfuQuality } from "../protocol/generated";

/** A simulcast layer, as `sfu_quality` names it. */
export type Layer = SfuQuality["quality"];

/**
 * Wider than this (device px), the high layer (the camera as captured) is worth receiving;
 * else the low one (half the size: 320 px wide, so a little upscaling is allowed). This client
 * never asks for "medium": it sends two layers, and the SFU would forward the nearest one.
 */
export const HIGH_ABOVE_PX = 400;
/** How long the shown sizes must stay still before the SFU is told (ms). */
export const LAYER_DEBOUNCE_MS = 300;
/** What the SFU sends of every member until told otherwise (docs/PROTOCOL.md §3.10). */
export const DEFAULT_LAYER: Layer = "high";

/** The layer for a video shown `width` device px wide (0: not shown at all). */
export function layerFor(width: number): Layer {
  return width > HIGH_ABOVE_PX ? "high" : "low";
}

/** How many device pixels `cssWidth` CSS px cover at this `devicePixelRatio` (whole). */
export function devicePixels(cssWidth: number, pixelRatio: number): number {
  return Math.round(cssWidth * (pixelRatio > 0 ? pixelRatio : 1));
}

/** A width and a height, in CSS px or in video pixels. */
export interface Extent {
  readonly width: number;
  readonly height: number;
}

/**
 * How wide the picture is shown in a box of this size: tiles show it whole, letterboxed
 * (`object-fit: contain`), so a 4:3 camera in a 16:9 tile is as wide as the tile is high
 * × 4/3. `picture` is the video's own size (`videoWidth` × `videoHeight`); before its first
 * frame it is unknown (null or zero), and the whole box counts.
 */
export function shownWidth(box: Extent, picture: Extent | null): number {
  const width = Math.max(0, box.width);
  if (picture === null || picture.width <= 0 || picture.height <= 0) return width;
  return Math.min(width, Math.max(0, box.height) * (picture.width / picture.height));
}

/**
 * The layer each other member's video needs, from the widths the tiles report, and what the
 * SFU was told of it. Sends nothing unless started: a mesh room has no SFU to tell, but the
 * widths are kept, ready for the room's move to the SFU.
 */
export class LayerRequests {
  /** How wide each member's camera tile shows their video (device px), as last measured. */
  private readonly widths = new Map<string, number>();
  private members: readonly string[] = [];
  /**
   * What the SFU was told of each member: DEFAULT_LAYER where it was told nothing; null where
   * it refused what it was told, so that what it does is not known.
   */
  private readonly told = new Map<string, Layer | null>();
  private started = false;
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly send: (member: string, layer: Layer) => void,
    private readonly delayMs: number = LAYER_DEBOUNCE_MS,
  ) {}

  /** A member's tile shows their camera `width` device px wide (0: not shown); null: the tile is gone. */
  shown(member: string, width: number | null): void {
    if ((this.widths.get(member) ?? null) === width) return;
    if (width === null) this.widths.delete(member);
    else this.widths.set(member, width);
    this.schedule();
  }

  /** The other members of the room, now: the only ones the SFU is told about. */
  present(members: readonly string[]): void {
    if (members.length === this.members.length && members.every((m, i) => m === this.members[i])) return;
    this.members = [...members];
    this.schedule();
  }

  /** A member left the room: nothing more is said about them. */
  forget(member: string): void {
    this.members = this.members.filter((m) => m !== member);
    this.widths.delete(member);
    this.told.delete(member);
  }

  /**
   * The SFU refused the latest request about a member (`error` with its ref): what it sends of
   * them is not known, so the next flush (a size changes) tells it again whatever is wanted.
   */
  refused(member: string): void {
    if (this.members.includes(member)) this.told.set(member, null);
  }

  /**
   * The SFU starts from its defaults (new connections to it: the room moved, or the SFU
   * restarted): tell it again whatever differs from them.
   */
  start(): void {
    this.told.clear();
    this.started = true;
    this.schedule();
  }

  /** Tell the SFU nothing more (the room's media no longer goes through it). */
  stop(): void {
    this.started = false;
    this.told.clear();
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
  }

  /** The layer a member's video needs now; with no tile shown, low. */
  wanted(member: string): Layer {
    return layerFor(this.widths.get(member) ?? 0);
  }

  /** Tell the SFU once the sizes have been still for the delay (each change starts it again). */
  private schedule(): void {
    if (!this.started) return;
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, this.delayMs);
  }

  private flush(): void {
    for (const member of this.members) {
      const layer = this.wanted(member);
      const told = this.told.has(member) ? this.told.get(member) : DEFAULT_LAYER;
      if (told === layer) continue;
      this.told.set(member, layer);
      this.send(member, layer);
    }
  }
}
