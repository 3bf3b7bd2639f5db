import type { LocalMediaState } from "../../rtc/media";
import "../styles/access.css";

const WHY = {
  denied: "access was blocked",
  missing: "none was found",
  busy: "it is in use by another app",
  failed: "it could not be started",
} as const;

export type BrowserFamily = "chromium" | "firefox" | "safari" | "other";

/** Which browser's settings to describe, from its user agent string. */
export function browserFamily(userAgent: string): BrowserFamily {
  if (/Firefox\/|FxiOS\//.test(userAgent)) return "firefox";
  if (/Edg(e|A|iOS)?\/|Chrome\/|Chromium\/|CriOS\//.test(userAgent)) return "chromium";
  if (/Safari\//.test(userAgent)) return "safari";
  return "other";
}

/** Where each browser keeps a site's camera and microphone permission. */
const WHERE: Record<Exclude<BrowserFamily, "other">, { name: string; steps: string }> = {
  chromium: {
    name: "Chrome or Edge",
    steps:
      "Click the site settings icon (or the camera icon with a red cross) at the left end of the address bar and set Camera and Microphone to Allow.",
  },
  firefox: {
    name: "Firefox",
    steps:
      "Click the crossed-out camera or microphone icon at the left end of the address bar and clear the block with the ✕ next to “Blocked”.",
  },
  safari: {
    name: "Safari",
    steps:
      "Choose Safari › Settings for This Website… in the menu bar (on iPhone or iPad: the aA button in the address bar › Website Settings) and set Camera and Microphone to Allow.",
  },
};

/**
 * How to allow the camera and microphone in this browser; the other browsers' ways and the
 * computer's own privacy settings folded away beneath.
 */
export function PermissionHelp({
  retry,
  userAgent = globalThis.navigator?.userAgent ?? "",
}: {
  /** A "Try again" button is beside it (else the way back is reloading the page). */
  retry: boolean;
  userAgent?: string;
}) {
  const family = browserFamily(userAgent);
  const others = (Object.keys(WHERE) as (keyof typeof WHERE)[]).filter((f) => f !== family);
  return (
    <div className="mt-1" data-testid="permission-help" data-browser={family}>
      {family !== "other" && (
        <p className="mb-1">
          {WHERE[family].steps} {retry ? "Then press Try again." : "Then reload the page."}
        </p>
      )}
      <details>
        <summary>
          {family === "other" ? "How to allow it in your browser" : "Another browser, or still blocked?"}
        </summary>
        <ul className="permission-help">
          {others.map((f) => (
            <li key={f}>
              <strong>{WHERE[f].name}:</strong> {WHERE[f].steps}
            </li>
          ))}
          <li>
            <strong>Still blocked?</strong> Your computer may not let the browser use it: on a Mac, System
            Settings › Privacy &amp; Security › Camera (and Microphone); on Windows, Settings › Privacy ›
            Camera.
          </li>
        </ul>
      </details>
    </div>
  );
}

/**
 * Says plainly what joining will be like when a device is missing or blocked, how to allow a
 * blocked one in this browser, and (with `onRetry`, e.g. `() => void media.retry()`) a
 * "Try again" button (`media-retry`) that asks for the devices again without a reload.
 */
export function MediaNotice({ state, onRetry }: { state: LocalMediaState; onRetry?: () => void }) {
  const { audioProblem: a, videoProblem: v } = state;
  if (a === null && v === null) return null;
  let outcome: string;
  if (a !== null && v !== null) outcome = "You can still join to watch and listen, and use the chat.";
  else if (v !== null) outcome = "You will join with audio only.";
  else outcome = "You will join without a microphone: others will not hear you.";
  const parts = [v && `Camera: ${WHY[v]}.`, a && `Microphone: ${WHY[a]}.`].filter(Boolean).join(" ");
  const blocked = a === "denied" || v === "denied";
  const busy = a === "busy" || v === "busy";
  return (
    <div className="alert alert-warning py-2 small mb-3" role="status" data-testid="media-notice">
      <strong>{outcome}</strong> {parts}
      {busy && " Close the other app that uses it, then try again."}
      {blocked && <PermissionHelp retry={onRetry !== undefined} />}
      {onRetry && (
        <div className="mt-2">
          <button
            type="button"
            className="btn btn-sm btn-dark"
            data-testid="media-retry"
            disabled={state.acquiring}
            onClick={onRetry}
          >
            {state.acquiring ? "Asking…" : "Try again"}
          </button>
        </div>
      )}
    </div>
  );
}
