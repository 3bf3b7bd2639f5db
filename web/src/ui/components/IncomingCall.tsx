import { Avatar } from "./Avatar";

/** The ringing dialog: who is calling, Accept (focused) and Decline (also Escape). */
export function IncomingCall({
  from,
  onAccept,
  onDecline,
}: {
  from: string;
  onAccept: () => void;
  onDecline: () => void;
}) {
  return (
    <div className="incoming-backdrop">
      <div
        className="incoming card shadow-lg"
        role="alertdialog"
        onKeyDown={(e) => {
          if (e.key === "Escape") onDecline();
        }}
        aria-modal="true"
        aria-labelledby="incoming-title"
        data-testid="incoming-call"
      >
        <div className="card-body text-center p-4">
          <div className="ring-pulse mb-3">
            <Avatar name={from} />
          </div>
          <h2 id="incoming-title" className="h4">
            {from} is calling you
          </h2>
          <p className="text-body-secondary">Incoming video call</p>
          <div className="d-flex gap-3 justify-content-center">
            <button
              type="button"
              className="btn btn-danger btn-lg px-4"
              data-testid="incoming-decline"
              onClick={onDecline}
            >
              Decline
            </button>
            <button
              type="button"
              className="btn btn-success btn-lg px-4"
              data-testid="incoming-accept"
              autoFocus
              onClick={onAccept}
            >
              Accept
            </button>
          </div>
        </div>
      </div>
    </div>
  );
}
