import { useEffect, useRef, type RefObject } from "react";
import { devicePixels, shownWidth } from "../../rtc/layers";

/**
 * Reports how wide the tile in `ref` shows its video's picture (device px: CSS px ×
 * `devicePixelRatio`, whole; 0 while the tile is not laid out) whenever that changes: the tile is resized (ResizeObserver), or the
 * picture's own size becomes known or changes (the video's `resize` event, HTML media
 * elements). Reports null when the tile goes. Without `report`, measures nothing.
 */
export function useShownWidth(
  ref: RefObject<HTMLElement | null>,
  report: ((width: number | null) => void) | undefined,
): void {
  const latest = useRef(report);
  useEffect(() => {
    latest.current = report;
  }, [report]);
  const wanted = report !== undefined;
  useEffect(() => {
    const tile = ref.current;
    if (!wanted || tile === null) return;
    const tell = (width: number | null) => latest.current?.(width);
    let told: number | null = null;
    const measure = () => {
      const video = tile.querySelector("video");
      const picture = video === null ? null : { width: video.videoWidth, height: video.videoHeight };
      const box = { width: tile.clientWidth, height: tile.clientHeight };
      const width = devicePixels(shownWidth(box, picture), window.devicePixelRatio);
      if (width === told) return;
      told = width;
      tell(width);
    };
    measure();
    // A video's `resize` does not bubble: the tile hears it in the capture phase.
    tile.addEventListener("resize", measure, true);
    const observer = typeof ResizeObserver === "undefined" ? null : new ResizeObserver(measure);
    observer?.observe(tile);
    return () => {
      observer?.disconnect();
      tile.removeEventListener("resize", measure, true);
      tell(null);
    };
  }, [ref, wanted]);
}
