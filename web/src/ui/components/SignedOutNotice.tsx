import { useEffect } from "react";
import { accounts } from "../hooks/account";
import { useServerRules } from "../hooks/server";
import { Link } from "./Link";

/**
 * The connection was closed because its account session ended (close code 4006: signed out
 * here or in another tab, or the password was changed elsewhere). The page does not go on
 * as a guest by itself: it says so, asks the server who this browser is now (so the top bar
 * shows "Sign in"), and offers to sign in again and come back here — or, on a server that
 * lets guests in, to go on as a guest (`onAsGuest`: back to where a guest picks a name).
 */
export function SignedOutNotice({
  consequence,
  className = "",
  onAsGuest,
}: {
  /** What it means here, in a sentence: "You are no longer in the meeting." */
  consequence: string;
  className?: string;
  onAsGuest?: () => void;
}) {
  const rules = useServerRules();
  useEffect(() => {
    void accounts.refresh();
  }, []);
  const next = `?next=${encodeURIComponent(window.location.pathname)}`;
  const guests = rules !== null && !rules.requireSignIn;
  return (
    <div
      className={`alert alert-danger d-flex align-items-center gap-2 flex-wrap ${className}`}
      role="alert"
      data-testid="lost"
      data-reason="signed_out"
    >
      <span className="flex-grow-1">
        You were signed out (here, in another tab, or by a password change). {consequence}
      </span>
      <Link to={`/login${next}`} className="btn btn-light btn-sm" testId="lost-sign-in">
        Sign in
      </Link>
      {onAsGuest && guests && (
        <button
          type="button"
          className="btn btn-outline-light btn-sm"
          data-testid="lost-as-guest"
          onClick={onAsGuest}
        >
          Go on as a guest
        </button>
      )}
    </div>
  );
}
