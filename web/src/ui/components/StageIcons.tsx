/**
 * Line icons for the stage, tiles and control bar, drawn like Icon.tsx's (24px grid,
 * currentColor, decorative). Kept apart so that Icon.tsx stays its owner's; they may move
 * into its table.
 */
const PATHS = {
  smile: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM8.5 14a4.5 4.5 0 0 0 7 0M9 9.5h.01M15 9.5h.01",
  stats: "M4 20V10M10 20V4M16 20v-7M22 20H2",
  help: "M12 21a9 9 0 1 0 0-18 9 9 0 0 0 0 18zM9.5 9.5a2.5 2.5 0 1 1 3.5 2.3c-.6.3-1 .9-1 1.6v.6M12 17h.01",
  layout: "M4 4h7v7H4zM13 4h7v7h-7zM4 13h7v7H4zM13 13h7v7h-7z",
  pin: "M9 3h6l-1 6 4 4H6l4-4zM12 13v8",
  fullscreen: "M4 9V4h5M20 9V4h-5M4 15v5h5M20 15v5h-5",
  exitFullscreen: "M9 4v5H4M15 4v5h5M9 20v-5H4M15 20v-5h5",
  minimise: "M5 19h14",
  restore: "M4 6h16v12H4zM4 10h16",
  lock: "M6 11h12v9H6zM8.5 11V8a3.5 3.5 0 0 1 7 0v3",
  key: "M14.5 14a4.5 4.5 0 1 0-4.2-3L3 18.3V21h2.7l.8-.8V18h2.2v-2.2h2.2l1.2-1.2A4.5 4.5 0 0 0 14.5 14zM16 8h.01",
  door: "M3 21h18M6 21V3h8M14 3l5 2v16M14 3v18M11.5 12v1",
};

export type StageIconName = keyof typeof PATHS;

export function StageIcon({ name, size = 20 }: { name: StageIconName; size?: number }) {
  return (
    <svg
      aria-hidden="true"
      focusable="false"
      width={size}
      height={size}
      viewBox="0 0 24 24"
      fill="none"
      stroke="currentColor"
      strokeWidth={1.8}
      strokeLinecap="round"
      strokeLinejoin="round"
    >
      <path d={PATHS[name]} />
    </svg>
  );
}
