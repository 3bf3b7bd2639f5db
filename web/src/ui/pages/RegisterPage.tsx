import { useState, type FormEvent } from "react";
import { AccountStatus } from "../components/AccountStatus";
import { Field, FormError } from "../components/Field";
import { Link } from "../components/Link";
import { TopBar } from "../components/TopBar";
import { explainAccount, type AccountField } from "../accountErrors";
import { accounts } from "../hooks/account";
import { navigate } from "../hooks/route";
import { nextPath } from "./next";

type Errors = Partial<Record<AccountField, string>>;

/** `/register`: username, display name and password; signs the new account in. */
export function RegisterPage() {
  const [username, setUsername] = useState("");
  const [displayName, setDisplayName] = useState("");
  const [password, setPassword] = useState("");
  const [errors, setErrors] = useState<Errors>({});
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    try {
      await accounts.register({
        username: username.trim(),
        display_name: displayName.trim() || username.trim(),
        password,
      });
      navigate(nextPath());
    } catch (error) {
      const { field, text } = explainAccount(error);
      setErrors({ [field]: text });
      setBusy(false);
    }
  };

  return (
    <div className="page">
      <TopBar>
        <AccountStatus />
      </TopBar>
      <main className="container narrow py-5" data-testid="register">
        <h1 className="h3 mb-1">Create an account</h1>
        <p className="text-body-secondary">
          With an account your name is yours: nobody else can join a meeting under it.
        </p>
        <form onSubmit={(e) => void submit(e)} className="card card-body" noValidate>
          <Field
            id="register-username"
            label="Username"
            hint="What you sign in with."
            autoComplete="username"
            maxLength={64}
            value={username}
            onChange={setUsername}
            error={errors.username}
          />
          <Field
            id="register-display-name"
            label="Display name"
            hint="How others see you in meetings. Leave it empty to use your username."
            autoComplete="name"
            maxLength={64}
            value={displayName}
            onChange={setDisplayName}
            error={errors.display_name}
          />
          <Field
            id="register-password"
            label="Password"
            type="password"
            hint="At least 8 characters."
            autoComplete="new-password"
            value={password}
            onChange={setPassword}
            error={errors.password}
          />
          <FormError text={errors.form ?? null} />
          <button type="submit" className="btn btn-primary" disabled={busy || !username.trim() || !password}>
            {busy ? "Creating…" : "Create account"}
          </button>
        </form>
        <p className="mt-3">
          Already have an account? <Link to="/login">Sign in</Link>
        </p>
      </main>
    </div>
  );
}
