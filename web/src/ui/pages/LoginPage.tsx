import { useState, type FormEvent } from "react";
import { Field, FormError } from "../components/Field";
import { Link } from "../components/Link";
import { TopBar } from "../components/TopBar";
import { explainAccount } from "../accountErrors";
import { accounts } from "../hooks/account";
import { navigate } from "../hooks/route";
import { nextPath } from "./next";

/** `/login`: username and password. */
export function LoginPage() {
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await accounts.signIn(username.trim(), password);
      navigate(nextPath());
    } catch (e) {
      setError(explainAccount(e).text);
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <TopBar />
      <main className="container narrow py-5" data-testid="login">
        <h1 className="h3 mb-3">Sign in</h1>
        <form onSubmit={(e) => void submit(e)} className="card card-body" noValidate>
          <Field
            id="login-username"
            label="Username"
            autoComplete="username"
            maxLength={64}
            value={username}
            onChange={setUsername}
          />
          <Field
            id="login-password"
            label="Password"
            type="password"
            autoComplete="current-password"
            value={password}
            onChange={setPassword}
          />
          <FormError text={error} />
          <button type="submit" className="btn btn-primary" disabled={busy || !username.trim() || !password}>
            {busy ? "Signing in…" : "Sign in"}
          </button>
        </form>
        <p className="mt-3">
          No account yet? <Link to="/register">Create one</Link> — or just <Link to="/">join as a guest</Link>
          .
        </p>
      </main>
    </div>
  );
}
