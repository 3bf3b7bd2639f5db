import { useId } from "react";
import {
  candidateWords,
  formatFps,
  formatKbps,
  formatMs,
  formatPercent,
  formatResolution,
  totalBitrate,
  type Bitrates,
  type PeerQuality,
  type VideoQuality,
} from "../../rtc/quality";
import type { RoomSession } from "../../room/session";
import { useQuality } from "../hooks/quality";
import { useStore } from "../hooks/store";
import { QualityIndicator } from "./QualityIndicator";
import "../styles/quality.css";

export interface StatsPanelProps {
  /** The room session: its mesh is sampled once a second while the panel is open. */
  session: RoomSession;
  /** Remote member id → the name as shown ("Sam (2)"), in the order to list them. */
  labels: ReadonlyMap<string, string>;
}

/** A value with a detail in smaller print after it. */
interface Cell {
  main: string;
  detail: string | null;
}

/** Shown where a number is not measured yet (before the first or second sample). */
const NOT_YET = "–";

/**
 * The statistics panel: per remote member, the numbers behind the tile's indicator (round
 * trip, loss, frame rate, path) and the detail (bitrates, resolutions, codecs, candidate
 * types), refreshed every second. Reads `getStats()` through `useQuality`, which shares one
 * poll with the tiles' indicators.
 */
export function StatsPanel({ session, labels }: StatsPanelProps) {
  const quality = useQuality(session);
  const { members } = useStore(session);
  const names = new Map(members.map((m) => [m.id, m.name]));
  return (
    // Focusable so keyboard users can scroll it: it holds no controls (WCAG 2.1.1).
    <div
      className="stats-panel"
      data-testid="stats-panel"
      role="region"
      aria-label="Connection statistics"
      tabIndex={0}
    >
      {labels.size === 0 ? (
        <p className="text-body-secondary" data-testid="stats-empty">
          No one else is in the meeting yet. Connection details for each person show here once they join.
        </p>
      ) : (
        <>
          <p className="small text-body-secondary mb-2">Updated every second.</p>
          {[...labels].map(([id, label]) => (
            <PeerStatsSection
              key={id}
              name={names.get(id) ?? label}
              label={label}
              quality={quality.get(id)}
            />
          ))}
        </>
      )}
    </div>
  );
}

function PeerStatsSection({
  name,
  label,
  quality: q,
}: {
  name: string;
  label: string;
  quality: PeerQuality | undefined;
}) {
  const headingId = useId();
  const rows: [stat: string, term: string, value: string | Cell][] = [
    ["rtt", "Round trip", q?.roundTripMs == null ? NOT_YET : formatMs(q.roundTripMs)],
    ["loss", "Packets lost", q?.lossPercent == null ? NOT_YET : formatPercent(q.lossPercent)],
    ["fps", "Frame rate", q === undefined ? NOT_YET : frameRateText(q)],
    ["path", "Path", q === undefined ? NOT_YET : pathText(q)],
    ["bitrate-in", "Receiving", q === undefined ? NOT_YET : bitrateText(q.bitrateIn)],
    ["bitrate-out", "Sending", q === undefined ? NOT_YET : bitrateText(q.bitrateOut)],
    ["resolution-in", "Video received", q === undefined ? NOT_YET : resolutionText(q.cameraIn, q.screenIn)],
    ["resolution-out", "Video sent", q === undefined ? NOT_YET : resolutionText(q.cameraOut, q.screenOut)],
    [
      "codec-in",
      "Codecs received",
      q === undefined ? NOT_YET : codecText(q.cameraIn ?? q.screenIn, q.audioCodecIn),
    ],
    [
      "codec-out",
      "Codecs sent",
      q === undefined ? NOT_YET : codecText(q.cameraOut ?? q.screenOut, q.audioCodecOut),
    ],
    ["local-candidate", "Your side", candidateWords(q?.localCandidateType ?? null) ?? NOT_YET],
    ["remote-candidate", "Their side", candidateWords(q?.remoteCandidateType ?? null) ?? NOT_YET],
  ];
  return (
    <section
      className="stats-peer"
      data-testid="stats-peer"
      data-member={name}
      data-label={label}
      aria-labelledby={headingId}
    >
      <h3 className="stats-peer-name" id={headingId}>
        <QualityIndicator quality={q} testId="stats-quality" />
        <span className="text-truncate">{label}</span>
      </h3>
      <dl className="stats-grid">
        {rows.map(([stat, term, value]) => (
          <div key={stat} className="stats-row">
            <dt>{term}</dt>
            <dd data-stat={stat}>
              {typeof value === "string" ? (
                value
              ) : (
                <>
                  {value.main}
                  {value.detail !== null && <span className="stats-detail"> ({value.detail})</span>}
                </>
              )}
            </dd>
          </div>
        ))}
      </dl>
    </section>
  );
}

/** The camera's frame rate; a screen share's when only the screen is coming. */
function frameRateText(q: PeerQuality): string {
  const fps = q.cameraIn?.framesPerSecond ?? null;
  if (fps !== null) return formatFps(fps);
  const screenFps = q.screenIn?.framesPerSecond ?? null;
  if (screenFps !== null) return `${formatFps(screenFps)} (screen)`;
  return q.cameraIn === null && q.screenIn === null ? "No video" : NOT_YET;
}

function pathText(q: PeerQuality): string {
  if (q.path === "relayed") return "Relayed through a server";
  if (q.path === "direct") return "Direct";
  return NOT_YET;
}

/** "1234 kbit/s", then "video 1200, audio 34" in smaller print. */
function bitrateText(rates: Bitrates): string | Cell {
  const total = totalBitrate(rates);
  if (total === null) return NOT_YET;
  const parts = [
    rates.video === null ? null : `video ${Math.round(rates.video)}`,
    rates.audio === null ? null : `audio ${Math.round(rates.audio)}`,
  ].filter((p) => p !== null);
  return { main: formatKbps(total), detail: parts.join(", ") };
}

/** "640×480", "640×480, screen 1920×1080", "Screen 1920×1080", "No video". */
function resolutionText(camera: VideoQuality | null, screen: VideoQuality | null): string {
  const parts = [
    camera === null ? null : formatResolution(camera),
    screen === null ? null : `screen ${formatResolution(screen)}`,
  ].filter((p) => p !== null);
  if (parts.length === 0) return "No video";
  const text = parts.join(", ");
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** "VP8, opus": the video codec (the camera's, else the screen's), then the audio codec. */
function codecText(video: VideoQuality | null, audioCodec: string | null): string {
  const parts = [video?.codec ?? null, audioCodec].filter((p) => p !== null);
  return parts.length === 0 ? NOT_YET : parts.join(", ");
}
