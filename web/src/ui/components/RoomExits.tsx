import type { Departure } from "../../room/hosting";
import { departureText } from "../words";
import type { LocalMedia } from "../../rtc/media";
import { useLocalMediaState } from "../hooks/media";
import { navigate } from "../hooks/route";
import { Link } from "./Link";
import { SelfPreview } from "./SelfPreview";
import { SignedOutNotice } from "./SignedOutNotice";
import { TopBar } from "./TopBar";

/** "You left the meeting", with Rejoin. */
export function LeftPage({ onRejoin }: { onRejoin: () => void }) {
  return (
    <div className="page">
      <TopBar />
      <main className="container narrow text-center py-5" data-testid="left">
        <h1 className="h3 mb-3">You left the meeting</h1>
        <div className="d-flex gap-2 justify-content-center">
          <button type="button" className="btn btn-primary" data-testid="left-rejoin" onClick={onRejoin}>
            Rejoin
          </button>
          <button
            type="button"
            className="btn btn-outline-light"
            data-testid="left-home"
            onClick={() => navigate("/")}
          >
            Back to home
          </button>
        </div>
      </main>
    </div>
  );
}

/**
 * Removed, ended for everyone, or not let in: no Rejoin button (it would only knock, or
 * loop), a link home instead.
 */
export function PutOutPage({ departure }: { departure: Departure }) {
  const { title, detail } = departureText(departure);
  return (
    <div className="page">
      <TopBar />
      <main
        className="container narrow text-center py-5"
        data-testid="put-out"
        data-reason={departure.reason}
      >
        <h1 className="h3 mb-3" data-testid="put-out-message">
          {title}
        </h1>
        {detail && <p className="text-body-secondary">{detail}</p>}
        <Link to="/" className="btn btn-primary" testId="put-out-home">
          Back to home
        </Link>
      </main>
    </div>
  );
}

/** In the lobby: waiting for a host, with Cancel (leave the lobby). */
export function LobbyWaiting({
  roomId,
  media,
  name,
  lost,
  signedOut = false,
  onCancel,
  onRetry,
}: {
  roomId: string;
  media: LocalMedia;
  name: string;
  lost: boolean;
  /** Lost because the account session ended (4006): no "Ask again" as someone else. */
  signedOut?: boolean;
  onCancel: () => void;
  onRetry: () => void;
}) {
  const local = useLocalMediaState(media);
  return (
    <div className="page">
      <TopBar>Meeting {roomId}</TopBar>
      <main className="container prejoin py-4" data-testid="lobby-waiting">
        <div className="row g-4 align-items-center">
          <div className="col-lg-7">
            <SelfPreview media={media} state={local} name={name} />
          </div>
          <div className="col-lg-5">
            {lost && signedOut ? (
              <SignedOutNotice consequence="You are no longer waiting to join." onAsGuest={onCancel} />
            ) : lost ? (
              <div className="alert alert-danger" role="alert" data-testid="lobby-lost">
                The connection to the server was lost while you were waiting.
              </div>
            ) : (
              <div className="d-flex align-items-center gap-3 mb-3" role="status">
                <span className="spinner-border" aria-hidden="true" />
                <h1 className="h4 m-0">Waiting for a host to let you in…</h1>
              </div>
            )}
            {!signedOut && (
              <p className="text-body-secondary">You will join as soon as a host lets you in.</p>
            )}
            <div className="d-flex gap-2">
              {lost && !signedOut && (
                <button type="button" className="btn btn-primary" data-testid="lobby-retry" onClick={onRetry}>
                  Ask again
                </button>
              )}
              <button
                type="button"
                className="btn btn-outline-light"
                data-testid="lobby-cancel"
                onClick={onCancel}
              >
                Cancel
              </button>
            </div>
          </div>
        </div>
      </main>
    </div>
  );
}
