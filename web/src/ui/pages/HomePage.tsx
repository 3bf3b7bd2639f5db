import { useState, type FormEvent } from "react";
import { createRoom, parseRoomInput, roomNotCreatedText } from "../../room/connect";
import { AccountStatus } from "../components/AccountStatus";
import { Icon } from "../components/Icon";
import { NameField } from "../components/NameField";
import { SignInRequired } from "../components/SignInRequired";
import { useDisplayName } from "../hooks/name";
import { navigate } from "../hooks/route";
import { useSignInGate } from "../hooks/server";

/** Home: your name, start a meeting, join one by link or code, or call someone. */
export function HomePage() {
  const display = useDisplayName();
  const [code, setCode] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const gate = useSignInGate();

  const start = async () => {
    setBusy(true);
    setError(null);
    try {
      navigate(`/r/${await createRoom()}`);
    } catch (error) {
      setError(roomNotCreatedText(error));
      setBusy(false);
    }
  };

  const join = (event: FormEvent) => {
    event.preventDefault();
    const room = parseRoomInput(code);
    if (room === null) setError("That is not a meeting link or code. A code looks like 'x7Gq2LmP9aBc'.");
    else navigate(`/r/${room}`);
  };

  return (
    <main className="home container" data-testid="home">
      <div className="home-hero">
        <div className="brand mb-3">
          <span className="brand-mark" aria-hidden="true">
            <Icon name="camera" size={22} />
          </span>
          Salon
        </div>
        <h1 className="display-6 fw-semibold">Video meetings on your own server.</h1>
        <p className="lead text-body-secondary">Start a meeting, share the link, talk. Nothing to install.</p>
      </div>
      {gate === "required" ? (
        <SignInRequired className="home-card shadow p-4" level={2} />
      ) : (
        <div className="card home-card shadow">
          <div className="card-body p-4">
            <AccountStatus className="mb-3" />
            <NameField id="home-name" className="mb-4" placeholder="How others will see you" {...display} />
            <button
              type="button"
              className="btn btn-primary btn-lg w-100 mb-3"
              data-testid="home-new-meeting"
              disabled={busy}
              onClick={() => void start()}
            >
              {busy ? "Creating…" : "New meeting"}
            </button>
            <form onSubmit={join} className="mb-3">
              <label htmlFor="home-code" className="form-label">
                Join with a link or code
              </label>
              <div className="input-group">
                <input
                  id="home-code"
                  data-testid="home-code"
                  className="form-control"
                  placeholder="Paste a link or code"
                  value={code}
                  onChange={(e) => setCode(e.target.value)}
                />
                <button
                  type="submit"
                  className="btn btn-outline-light"
                  data-testid="home-join"
                  disabled={code.trim() === ""}
                >
                  Join
                </button>
              </div>
            </form>
            {error && (
              <div className="alert alert-danger py-2 small" role="alert">
                {error}
              </div>
            )}
            <hr />
            <button
              type="button"
              className="btn btn-outline-light w-100"
              data-testid="home-call"
              onClick={() => navigate("/call")}
            >
              Call someone
            </button>
          </div>
        </div>
      )}
    </main>
  );
}
