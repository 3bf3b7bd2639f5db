import type { CallPhase, CallSnapshot } from "../../room/call";

/** Under the dial box: calling, ringing (with Cancel), or how the last call ended. */
export function CallStatus({
  phase,
  peer,
  outcome,
  onCancel,
}: {
  phase: CallPhase;
  peer: string | null;
  outcome: CallSnapshot["outcome"];
  onCancel: () => void;
}) {
  if (phase === "calling" || phase === "ringing") {
    return (
      <div
        className="alert alert-info d-flex align-items-center gap-2 mt-3 mb-0 py-2"
        role="status"
        data-testid="call-status"
      >
        <span className="spinner-grow spinner-grow-sm" aria-hidden="true" />
        <span className="flex-grow-1">
          {phase === "calling" ? `Calling ${peer ?? ""}…` : `Ringing ${peer ?? ""}…`}
        </span>
        {phase === "ringing" && (
          <button
            type="button"
            className="btn btn-sm btn-outline-light"
            data-testid="call-cancel"
            onClick={onCancel}
          >
            Cancel
          </button>
        )}
      </div>
    );
  }
  if (outcome === null) return null;
  const label = OUTCOME_LABELS[outcome.reason] ?? "Call ended";
  return (
    <div
      className="alert alert-secondary mt-3 mb-0 py-2"
      role="status"
      data-testid="call-status"
      data-reason={outcome.reason}
    >
      <strong>{label}.</strong> {outcome.message}
    </div>
  );
}

const OUTCOME_LABELS: Record<string, string> = {
  declined: "Declined",
  busy: "Busy",
  timeout: "No answer",
  cancelled: "Cancelled",
  offline: "Offline",
  hangup: "Call ended",
  not_online: "Not online",
  self_call: "That's you",
  in_call: "Already in a call",
  lost: "Call ended",
};
