import { describe, expect, it } from "vitest";
import {
  arrange,
  cameraTile,
  chooseLayout,
  controlsInBar,
  fitGrid,
  followPin,
  screenTile,
  shareOrder,
  TILE_ASPECT,
  TILE_GAP,
  type Layout,
  type LayoutInput,
  type Rect,
} from "./layout";

const base: LayoutInput = {
  choice: "auto",
  self: "me",
  members: ["me", "ann", "bob"],
  screens: [],
  pinned: null,
  speaker: null,
  selfHidden: false,
  width: 1200,
};

const layout = (over: Partial<LayoutInput>) => chooseLayout({ ...base, ...over });

describe("chooseLayout", () => {
  it("shows everyone in a grid on a wide stage", () => {
    expect(layout({})).toEqual({
      mode: "grid",
      main: null,
      others: ["camera:me", "camera:ann", "camera:bob"],
    });
  });

  it("shows the active speaker large on a narrow stage", () => {
    const l = layout({ width: 390, speaker: "bob" });
    expect(l.mode).toBe("speaker");
    expect(l.main).toBe("camera:bob");
    expect(l.others).toEqual(["camera:me", "camera:ann"]);
  });

  it("treats 600 px as narrow and 601 px as wide", () => {
    expect(layout({ width: 600 }).mode).toBe("speaker");
    expect(layout({ width: 601 }).mode).toBe("grid");
  });

  it("falls back to the first other member before anyone spoke, and to this side when alone", () => {
    expect(layout({ choice: "speaker" }).main).toBe("camera:ann");
    expect(layout({ choice: "speaker", members: ["me"] }).main).toBe("camera:me");
  });

  it("never makes this side the speaker while others are here", () => {
    expect(layout({ choice: "speaker", speaker: "me" }).main).toBe("camera:ann");
  });

  it("ignores a speaker who has left", () => {
    expect(layout({ choice: "speaker", speaker: "zed" }).main).toBe("camera:ann");
  });

  it("switches to the presenter layout when someone shares, screen large and the presenter's camera in the strip", () => {
    for (const choice of ["auto", "speaker"] as const) {
      const l = layout({ choice, screens: ["ann"] });
      expect(l.mode).toBe("presenter");
      expect(l.main).toBe("screen:ann");
      expect(l.others).toEqual(["camera:me", "camera:ann", "camera:bob"]);
    }
  });

  it("presents this side's own screen too", () => {
    expect(layout({ screens: ["me"] }).main).toBe("screen:me");
  });

  it("presents the newest screen and keeps the older ones in the strip", () => {
    const l = layout({ screens: ["ann", "bob"] });
    expect(l.main).toBe("screen:bob");
    expect(l.others.slice(0, 1)).toEqual(["screen:ann"]);
  });

  it("keeps an explicit grid during a share, screens first", () => {
    const l = layout({ choice: "grid", screens: ["bob"] });
    expect(l).toEqual({
      mode: "grid",
      main: null,
      others: ["screen:bob", "camera:me", "camera:ann", "camera:bob"],
    });
  });

  it("makes a pinned camera the main tile, even over a screen or in the grid", () => {
    for (const over of [{ screens: ["ann"] }, { choice: "grid" as const }, { width: 390, speaker: "bob" }]) {
      const l = layout({ ...over, pinned: "camera:ann" });
      expect(l.mode).toBe("speaker");
      expect(l.main).toBe("camera:ann");
      expect(l.others).not.toContain("camera:ann");
    }
  });

  it("makes a pinned screen the main tile in the presenter layout", () => {
    const l = layout({ screens: ["ann", "bob"], pinned: "screen:ann" });
    expect(l.mode).toBe("presenter");
    expect(l.main).toBe("screen:ann");
    expect(l.others).toContain("screen:bob");
  });

  it("forgets a pin whose tile is gone", () => {
    expect(layout({ pinned: "screen:ann" }).mode).toBe("grid");
    expect(layout({ pinned: "camera:zed" }).mode).toBe("grid");
  });

  it("leaves out the minimised self view everywhere", () => {
    const all = (l: Layout) => [l.main, ...l.others];
    expect(all(layout({ selfHidden: true }))).not.toContain("camera:me");
    expect(all(layout({ selfHidden: true, screens: ["me"] }))).toEqual(["screen:me", "camera:ann", "camera:bob"]);
    expect(all(layout({ selfHidden: true, choice: "speaker", members: ["me"] }))).toEqual([null]);
  });
});

describe("followPin", () => {
  const members = [
    { id: "m5", formerIds: ["m2", "m4"] },
    { id: "m3", formerIds: [] },
  ];
  it("moves a pin from a replaced member to the one that took its seat, same kind of tile", () => {
    expect(followPin(cameraTile("m4"), members)).toBe("camera:m5");
    expect(followPin(screenTile("m2"), members)).toBe("screen:m5");
  });
  it("leaves any other pin as it is", () => {
    expect(followPin(null, members)).toBeNull();
    expect(followPin(cameraTile("m3"), members)).toBe("camera:m3");
    expect(followPin(screenTile("m5"), members)).toBe("screen:m5");
    expect(followPin(cameraTile("me"), members)).toBe("camera:me"); // this side, not a member
    expect(followPin(cameraTile("gone"), members)).toBe("camera:gone"); // left: chooseLayout ignores it
  });
});

describe("shareOrder", () => {
  it("keeps the order screens started in and appends new ones", () => {
    expect(shareOrder([], ["ann", "bob"])).toEqual(["ann", "bob"]);
    expect(shareOrder(["bob"], ["ann", "bob"])).toEqual(["bob", "ann"]);
    expect(shareOrder(["bob", "ann"], ["ann"])).toEqual(["ann"]);
  });
});

const aspect = (r: { width: number; height: number }) => r.width / r.height;

describe("fitGrid", () => {
  it("puts two people side by side on a wide stage", () => {
    const fit = fitGrid(2, { width: 1200, height: 600 });
    expect([fit.cols, fit.rows]).toEqual([2, 1]);
  });

  it("stacks two people when the chat leaves a squarish stage, and keeps them 16:9, not tall portraits", () => {
    const fit = fitGrid(2, { width: 700, height: 650 });
    expect([fit.cols, fit.rows]).toEqual([1, 2]);
    expect(aspect(fit.tile)).toBeCloseTo(TILE_ASPECT);
    expect(fit.tile.width).toBeCloseTo(Math.min(700, ((650 - TILE_GAP) / 2) * TILE_ASPECT));
  });

  it("chooses the larger tiles of all column counts", () => {
    // Every other column count gives tiles no wider than the chosen one.
    const area = { width: 1000, height: 600 };
    const fit = fitGrid(5, area);
    for (let cols = 1; cols <= 5; cols++) {
      const rows = Math.ceil(5 / cols);
      const w = Math.min((1000 - TILE_GAP * (cols - 1)) / cols, ((600 - TILE_GAP * (rows - 1)) / rows) * TILE_ASPECT);
      expect(fit.tile.width).toBeGreaterThanOrEqual(w - 1e-9);
    }
    expect(fit.cols * fit.rows).toBeGreaterThanOrEqual(5);
  });

  it("never overflows its area", () => {
    for (const [n, w, h] of [
      [1, 390, 700],
      [3, 390, 700],
      [8, 1280, 700],
      [7, 500, 300],
    ] as const) {
      const fit = fitGrid(n, { width: w, height: h });
      expect(fit.cols * fit.tile.width + (fit.cols - 1) * TILE_GAP).toBeLessThanOrEqual(w + 1e-9);
      expect(fit.rows * fit.tile.height + (fit.rows - 1) * TILE_GAP).toBeLessThanOrEqual(h + 1e-9);
    }
  });
});

const inside = (r: Rect, w: number, h: number) =>
  r.x >= -1e-9 && r.y >= -1e-9 && r.x + r.width <= w + 1e-9 && r.y + r.height <= h + 1e-9;
const overlap = (a: Rect, b: Rect) =>
  a.x < b.x + b.width - 1e-9 && b.x < a.x + a.width - 1e-9 && a.y < b.y + b.height - 1e-9 && b.y < a.y + a.height - 1e-9;

describe("arrange", () => {
  const check = (l: Layout, w: number, h: number) => {
    const placed = arrange(l, { width: w, height: h });
    const rects = [...placed.tiles.values()].map((t) => t.rect);
    expect(placed.tiles.size).toBe(l.others.length + (l.main ? 1 : 0));
    for (const r of rects) expect(inside(r, w, h)).toBe(true);
    rects.forEach((a, i) => rects.slice(i + 1).forEach((b) => expect(overlap(a, b)).toBe(false)));
    return placed;
  };

  it("lays out a grid of 16:9 tiles, centred, the last row too", () => {
    const l = layout({ members: ["me", "a", "b"] });
    const placed = check(l, 1000, 600);
    const rects = l.others.map((id) => placed.tiles.get(id)!.rect);
    for (const r of rects) expect(aspect(r)).toBeCloseTo(TILE_ASPECT);
    const [first, , last] = rects as [Rect, Rect, Rect];
    // 2×2 with one tile in the last row: it is centred under the first row.
    expect(last.y).toBeGreaterThan(first.y);
    expect(last.x + last.width / 2).toBeCloseTo(500);
    expect(placed.tiles.get("camera:me")!.place).toBe("grid");
  });

  it("gives the presenter's screen the large tile, larger than any camera, beside a strip", () => {
    const l = layout({ screens: ["ann"] });
    for (const [w, h] of [
      [1250, 640],
      [900, 640],
      [390, 700],
      [360, 500],
    ] as const) {
      const placed = check(l, w, h);
      const screen = placed.tiles.get(screenTile("ann"))!;
      expect(screen.place).toBe("main");
      for (const id of l.others) {
        const t = placed.tiles.get(id)!;
        expect(t.place).toBe("strip");
        expect(t.rect.width * t.rect.height).toBeLessThan(screen.rect.width * screen.rect.height);
      }
    }
  });

  it("puts the strip on the right of a wide stage and along the bottom of a tall one", () => {
    const l = layout({ choice: "speaker", speaker: "ann" });
    expect(arrange(l, { width: 1250, height: 640 }).strip).toBe("right");
    expect(arrange(l, { width: 390, height: 700 }).strip).toBe("bottom");
  });

  it("on a phone held upright gives the height a picture cannot use to the strip", () => {
    const members = ["me", "ann", "bob", "cat", "dan"];
    const l = layout({ choice: "speaker", members, speaker: "ann", width: 366 });
    const placed = check(l, 366, 600);
    const main = placed.tiles.get(cameraTile("ann"))!.rect;
    expect(main.height).toBeLessThanOrEqual(Math.round(366 * 0.75)); // a 4:3 camera fills it
    for (const id of l.others) {
      const t = placed.tiles.get(id)!.rect;
      expect(t.width).toBeGreaterThanOrEqual(150); // two columns, not four slivers of 85 px
      expect(t.y).toBeGreaterThanOrEqual(main.y + main.height);
    }
    // A wide stage keeps its strip as it was: the rule is for tall stages only.
    const wide = check(layout({ choice: "speaker", members, speaker: "ann" }), 1250, 640);
    expect(wide.tiles.get(cameraTile("ann"))!.rect.height).toBe(640);
  });

  it("gives a lone main tile the whole stage", () => {
    const l = layout({ choice: "speaker", members: ["me"] });
    const placed = check(l, 800, 500);
    expect(placed.tiles.get(cameraTile("me"))!.rect).toEqual({ x: 0, y: 0, width: 800, height: 500 });
    expect(placed.strip).toBeNull();
  });

  it("fits a full room of eight in the strip without overlap", () => {
    const members = ["me", "a", "b", "c", "d", "e", "f", "g"];
    check(layout({ members, screens: ["a", "b"] }), 1250, 640);
    check(layout({ members, screens: ["a", "b"] }), 360, 500);
  });
});

describe("controlsInBar", () => {
  it("keeps only the essential controls at 600 px and below", () => {
    expect(controlsInBar(12, 4, 600)).toBe(4);
    expect(controlsInBar(12, 4, 360)).toBe(4);
    expect(controlsInBar(3, 4, 390)).toBe(3);
  });

  it("keeps everything when all fit, else leaves a slot for More", () => {
    expect(controlsInBar(12, 4, 12 * 56)).toBe(12);
    expect(controlsInBar(12, 4, 12 * 56 - 1)).toBe(10);
    expect(controlsInBar(12, 4, 700)).toBe(12);
    expect(controlsInBar(12, 4, 640)).toBe(10);
    expect(controlsInBar(12, 4, 601)).toBe(9);
  });

  it("never goes below the essential controls", () => {
    expect(controlsInBar(12, 5, 601, 200)).toBe(5);
  });
});
