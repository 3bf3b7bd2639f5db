import { useState, type FormEvent } from "react";
import { AccountError, type Account } from "../../account/account";
import { Field, FormError } from "../components/Field";
import { Link } from "../components/Link";
import { TopBar } from "../components/TopBar";
import { explainAccount } from "../accountErrors";
import { accounts, useAccount } from "../hooks/account";
import { navigate } from "../hooks/route";

/** `/account`: change the display name or the password, or sign out. */
export function AccountPage() {
  const { status, account } = useAccount();
  return (
    <div className="page">
      <TopBar>Account</TopBar>
      <main className="container narrow py-5" data-testid="account">
        <h1 className="h3 mb-3">Your account</h1>
        {status === "loading" && <p className="text-body-secondary">Loading…</p>}
        {status === "guest" && (
          <p>
            You are not signed in. <Link to="/login?next=/account">Sign in</Link> or{" "}
            <Link to="/register?next=/account">create an account</Link>.
          </p>
        )}
        {account !== null && <SignedIn account={account} />}
      </main>
    </div>
  );
}

function SignedIn({ account }: { account: Account }) {
  const [leaving, setLeaving] = useState(false);
  const signOut = async () => {
    setLeaving(true);
    await accounts.signOut().catch(() => undefined); // signed out on this page either way
    navigate("/");
  };
  return (
    <>
      <p className="text-body-secondary">
        Signed in as <strong data-testid="account-display-name">{account.display_name}</strong> (username{" "}
        <span data-testid="account-username">{account.username}</span>).
      </p>
      <DisplayNameForm current={account.display_name} />
      <PasswordForm />
      <section className="card card-body" aria-labelledby="signout-title">
        <h2 id="signout-title" className="h5">
          Sign out
        </h2>
        <p className="text-body-secondary small">Ends this session on this browser.</p>
        <div className="d-flex gap-2">
          <button
            type="button"
            className="btn btn-outline-danger"
            disabled={leaving}
            onClick={() => void signOut()}
          >
            Sign out
          </button>
          <Link to="/" className="btn btn-outline-light">
            Back to home
          </Link>
        </div>
      </section>
    </>
  );
}

function Saved({ text }: { text: string | null }) {
  return (
    <div role="status" className="small text-success mt-2" data-testid="saved">
      {text}
    </div>
  );
}

function DisplayNameForm({ current }: { current: string }) {
  const [name, setName] = useState(current);
  const [error, setError] = useState<string | null>(null);
  const [form, setForm] = useState<string | null>(null);
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    setForm(null);
    setSaved(null);
    try {
      await accounts.update({ display_name: name.trim() });
      setSaved("Display name saved.");
    } catch (e) {
      const { field, text } = explainAccount(e);
      if (field === "display_name") setError(text);
      else setForm(text);
    }
    setBusy(false);
  };
  return (
    <form
      className="card card-body mb-3"
      aria-labelledby="name-title"
      onSubmit={(e) => void submit(e)}
      noValidate
    >
      <h2 id="name-title" className="h5">
        Change your display name
      </h2>
      <Field
        id="account-display-name"
        label="Display name"
        hint="How others see you in meetings and calls."
        autoComplete="name"
        maxLength={64}
        value={name}
        onChange={setName}
        error={error}
      />
      <FormError text={form} />
      <div>
        <button
          type="submit"
          className="btn btn-primary"
          disabled={busy || !name.trim() || name.trim() === current}
        >
          Save name
        </button>
      </div>
      <Saved text={saved} />
    </form>
  );
}

function PasswordForm() {
  const [current, setCurrent] = useState("");
  const [next, setNext] = useState("");
  const [errors, setErrors] = useState<{ current?: string; next?: string; form?: string }>({});
  const [saved, setSaved] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    setBusy(true);
    setErrors({});
    setSaved(null);
    try {
      await accounts.update({ current_password: current, new_password: next });
      setCurrent("");
      setNext("");
      setSaved("Password changed.");
    } catch (e) {
      const { field, text } = explainAccount(e);
      if (field === "password") setErrors({ next: text });
      else if (e instanceof AccountError && e.code === "bad_credentials")
        setErrors({ current: "That is not your current password." });
      else setErrors({ form: text });
    }
    setBusy(false);
  };
  return (
    <form
      className="card card-body mb-3"
      aria-labelledby="password-title"
      onSubmit={(e) => void submit(e)}
      noValidate
    >
      <h2 id="password-title" className="h5">
        Change your password
      </h2>
      <Field
        id="account-current-password"
        label="Current password"
        type="password"
        autoComplete="current-password"
        value={current}
        onChange={setCurrent}
        error={errors.current}
      />
      <Field
        id="account-new-password"
        label="New password"
        type="password"
        hint="At least 8 characters."
        autoComplete="new-password"
        value={next}
        onChange={setNext}
        error={errors.next}
      />
      <FormError text={errors.form ?? null} />
      <div>
        <button type="submit" className="btn btn-primary" disabled={busy || !current || !next}>
          Change password
        </button>
      </div>
      <Saved text={saved} />
    </form>
  );
}
