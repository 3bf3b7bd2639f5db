import type { Knocker } from "../../room/hosting";
import { KnockButtons } from "./SecurityPanel";

/** Notices shown at most; the rest wait in the Security panel. */
const SHOWN = 2;

interface Props {
  waiting: readonly Knocker[];
  dismissed: ReadonlySet<string>;
  onAdmit: (id: string) => void;
  onDeny: (id: string) => void;
  onDismiss: (id: string) => void;
  onOpenPanel: () => void;
}

/** For hosts: "Bob wants to join", with Admit and Deny, until answered or dismissed. */
export function KnockNotices({ waiting, dismissed, onAdmit, onDeny, onDismiss, onOpenPanel }: Props) {
  const open = waiting.filter((k) => !dismissed.has(k.id));
  if (open.length === 0) return null;
  const more = open.length - SHOWN;
  return (
    <div className="knock-notices m-2" role="region" aria-label="People asking to join">
      {open.slice(0, SHOWN).map((k) => (
        <div
          key={k.id}
          className="alert alert-info d-flex align-items-center gap-2 py-2 mb-2"
          role="status"
          data-testid="knock-notice"
          data-name={k.name}
          data-removed={k.removed ? "true" : "false"}
        >
          <span className="flex-grow-1 text-truncate">
            <strong>{k.name}</strong> wants to join
            {k.removed && " (removed from this meeting earlier)"}
          </span>
          <KnockButtons knocker={k} onAdmit={onAdmit} onDeny={onDeny} prefix="knock" />
          <button
            type="button"
            className="btn-close"
            aria-label={`Dismiss the notice about ${k.name}`}
            data-testid="knock-dismiss"
            onClick={() => onDismiss(k.id)}
          />
        </div>
      ))}
      {more > 0 && (
        <button type="button" className="btn btn-sm btn-link" data-testid="knock-more" onClick={onOpenPanel}>
          {more} more waiting: open Security
        </button>
      )}
    </div>
  );
}
