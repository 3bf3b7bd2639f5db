/**
 * Shown while the signaling connection is away and being restored. Calls go on meanwhile
 * (media is peer to peer), so this is a status, not an alert.
 */
export function ReconnectingBanner() {
  return (
    <div
      className="alert alert-warning reconnecting-banner m-2 py-2 d-flex align-items-center gap-2"
      role="status"
      data-testid="reconnecting"
    >
      <span className="spinner-border spinner-border-sm" aria-hidden="true" />
      <span>Reconnecting…</span>
    </div>
  );
}
