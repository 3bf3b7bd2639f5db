import type { PeerQuality, QualityLevel } from "../../rtc/quality";
import { describeQuality, qualityDetails } from "../../rtc/quality";
import "../styles/quality.css";

export interface QualityIndicatorProps {
  /** One member's figures from `useQuality(session).get(memberId)`; undefined while measuring. */
  quality: PeerQuality | undefined;
  /** `data-testid`: "tile-quality" on a tile (the default); the statistics panel uses its own. */
  testId?: string;
}

/** How many of the three bars are lit for a level. */
const LIT: Record<QualityLevel, number> = { good: 3, fair: 2, poor: 1, unknown: 0 };

/**
 * A tile's connection indicator: three bars for the level (good, fair, poor), a sentence for
 * screen readers, and the numbers behind it as a tooltip. Presentational: the caller polls.
 */
export function QualityIndicator({ quality, testId = "tile-quality" }: QualityIndicatorProps) {
  const level = quality?.level ?? "unknown";
  const path = quality?.path ?? "unknown";
  const lit = LIT[level];
  return (
    <span
      className={`quality-indicator quality-${level}`}
      data-testid={testId}
      data-level={level}
      data-path={path}
      role="img"
      aria-label={describeQuality(quality)}
      title={qualityDetails(quality)}
    >
      {[1, 2, 3].map((bar) => (
        <span key={bar} className={`quality-bar quality-bar-${bar} ${bar <= lit ? "lit" : ""}`} />
      ))}
    </span>
  );
}
