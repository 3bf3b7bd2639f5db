import type { LocalMediaState } from "../../rtc/media";

const WHY = {
  denied: "access was blocked",
  missing: "none was found",
  busy: "it is in use by another app",
  failed: "it could not be started",
} as const;

/** Says plainly what joining will be like when a device is missing or blocked. */
export function MediaNotice({ state }: { state: LocalMediaState }) {
  const { audioProblem: a, videoProblem: v } = state;
  if (state.acquiring || (a === null && v === null)) return null;
  let outcome: string;
  if (a !== null && v !== null) outcome = "You can still join to watch and listen, and use the chat.";
  else if (v !== null) outcome = "You will join with audio only.";
  else outcome = "You will join without a microphone: others will not hear you.";
  const parts = [v && `Camera: ${WHY[v]}.`, a && `Microphone: ${WHY[a]}.`].filter(Boolean).join(" ");
  const blocked = a === "denied" || v === "denied";
  return (
    <div className="alert alert-warning py-2 small mb-3" role="status" data-testid="media-notice">
      <strong>{outcome}</strong> {parts}
      {blocked && " To allow it, use the camera icon in the address bar and reload."}
    </div>
  );
}
