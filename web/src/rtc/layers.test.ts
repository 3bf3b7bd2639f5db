import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { devicePixels, LAYER_DEBOUNCE_MS, LayerRequests, layerFor, shownWidth, type Layer } from "./layers";

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe("layerFor", () => {
  it("is high above 400 device px, else low (not shown: 0); never medium: two layers are sent", () => {
    expect([1920, 481, 401, 400, 321, 320, 120, 0].map(layerFor)).toEqual([
      "high",
      "high",
      "high",
      "low",
      "low",
      "low",
      "low",
      "low",
    ]);
  });

  it("counts device pixels: on a 2x display, a tile 321 CSS px wide needs the high layer", () => {
    expect(devicePixels(321, 2)).toBe(642);
    expect(layerFor(devicePixels(321, 2))).toBe("high");
    expect(layerFor(devicePixels(321, 1))).toBe("low");
    expect(layerFor(devicePixels(250, 1.75))).toBe("high"); // 438: the low layer's 320 would blur
    expect(devicePixels(300, 0)).toBe(300); // no ratio known: CSS px
  });
});

describe("shownWidth", () => {
  it("is the letterboxed picture's width: a 4:3 camera in a 16:9 tile is narrower than the tile", () => {
    expect(shownWidth({ width: 640, height: 360 }, { width: 640, height: 480 })).toBe(480);
    expect(shownWidth({ width: 300, height: 400 }, { width: 640, height: 480 })).toBe(300);
    expect(layerFor(shownWidth({ width: 500, height: 281 }, { width: 160, height: 120 }))).toBe("low");
    expect(layerFor(shownWidth({ width: 900, height: 506 }, { width: 640, height: 480 }))).toBe("high");
  });

  it("is the box's width before the picture's size is known, and 0 for a box not laid out", () => {
    expect(shownWidth({ width: 500, height: 281 }, null)).toBe(500);
    expect(shownWidth({ width: 500, height: 281 }, { width: 0, height: 0 })).toBe(500);
    expect(shownWidth({ width: 0, height: 0 }, { width: 640, height: 480 })).toBe(0);
  });
});

/** LayerRequests whose sends are noted as `member layer`. */
function requests() {
  const sent: string[] = [];
  const layers = new LayerRequests((member, layer: Layer) => sent.push(`${member} ${layer}`));
  return { layers, sent };
}

describe("LayerRequests", () => {
  it("tells the SFU what differs from its default (high), once the sizes are still for 300 ms", async () => {
    const { layers, sent } = requests();
    layers.present(["bob", "cy", "di"]);
    layers.shown("bob", 640);
    layers.shown("cy", 300);
    layers.start(); // di has no tile shown: low
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS - 1);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(sent).toEqual(["cy low", "di low"]);
  });

  it("waits while the sizes keep changing (a window dragged), and sends only changes", async () => {
    const { layers, sent } = requests();
    layers.present(["bob"]);
    layers.shown("bob", 640);
    layers.start();
    for (const width of [600, 500, 400, 300, 150]) {
      layers.shown("bob", width);
      await vi.advanceTimersByTimeAsync(100);
    }
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low"]);
    layers.shown("bob", 190); // still low
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    layers.shown("bob", 700);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    layers.shown("bob", 650);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low", "bob high"]);
  });

  it("asks for low when a tile goes, and nothing more about a member who left", async () => {
    const { layers, sent } = requests();
    layers.present(["bob", "cy"]);
    layers.shown("bob", 640);
    layers.shown("cy", 640);
    layers.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual([]);
    layers.shown("bob", null); // bob's tile went, bob is still in the room
    layers.forget("cy");
    layers.shown("cy", null);
    layers.present(["bob"]);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low"]);
  });

  it("sends nothing before start or after stop (a mesh room), keeping the sizes for the move", async () => {
    const { layers, sent } = requests();
    layers.present(["bob"]);
    layers.shown("bob", 100);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toEqual([]);
    layers.start();
    layers.stop(); // before the delay ran out
    layers.shown("bob", 300);
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toEqual([]);
    layers.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low"]);
  });

  it("after a refusal, tells the SFU again with the next flush, even what is its default", async () => {
    const { layers, sent } = requests();
    layers.present(["bob", "cy"]);
    layers.shown("bob", 100);
    layers.shown("cy", 100);
    layers.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    layers.shown("bob", 900);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low", "cy low", "bob high"]);
    layers.refused("bob"); // the SFU refused "bob high": it may still send bob's low layer
    layers.refused("cy");
    await vi.advanceTimersByTimeAsync(5_000);
    expect(sent).toHaveLength(3); // not at once: with the next change
    layers.shown("bob", 950); // still high
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent.slice(3)).toEqual(["bob high", "cy low"]);
    layers.shown("bob", 900);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toHaveLength(5); // told again: nothing more to say
    layers.forget("cy");
    layers.refused("cy"); // about someone who left
    layers.shown("bob", 950);
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toHaveLength(5);
  });

  it("tells a restarted SFU again what differs from its defaults", async () => {
    const { layers, sent } = requests();
    layers.present(["bob", "cy"]);
    layers.shown("bob", 100);
    layers.shown("cy", 900);
    layers.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    layers.start();
    await vi.advanceTimersByTimeAsync(LAYER_DEBOUNCE_MS);
    expect(sent).toEqual(["bob low", "bob low"]);
  });
});
