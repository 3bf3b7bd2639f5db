import type { ReactNode } from "react";
import { useSignInGate } from "../hooks/server";
import { Link } from "./Link";
import { TopBar } from "./TopBar";

/**
 * "This server requires you to sign in", instead of a page that would try the WebSocket the
 * server refuses to guests. The sign-in link comes back here afterwards.
 */
export function SignInRequired({ className = "", level = 1 }: { className?: string; level?: 1 | 2 }) {
  const Heading = level === 1 ? "h1" : "h2";
  const here = window.location.pathname;
  const next = here === "/" ? "" : `?next=${encodeURIComponent(here)}`;
  return (
    <section
      className={`card card-body ${className}`}
      data-testid="sign-in-required"
      aria-labelledby="sign-in-required-title"
    >
      <Heading id="sign-in-required-title" className="h4">
        This server requires you to sign in
      </Heading>
      <p className="text-body-secondary">Only people with an account can meet or call here.</p>
      <div className="d-flex gap-2 flex-wrap">
        <Link to={`/login${next}`} className="btn btn-primary" testId="sign-in-required-login">
          Sign in
        </Link>
        <Link to={`/register${next}`} className="btn btn-outline-light" testId="sign-in-required-register">
          Create account
        </Link>
      </div>
    </section>
  );
}

/**
 * A page that connects only once the sign-in gate is open: "Loading…" while the server's
 * rules are read, "This server requires you to sign in" for a guest where it does, else the
 * page itself.
 */
export function SignedInPage({ title, children }: { title: ReactNode; children: ReactNode }) {
  const gate = useSignInGate();
  if (gate === "open") return <>{children}</>;
  return (
    <div className="page">
      <TopBar>{title}</TopBar>
      <main className="container narrow py-5">
        {gate === "required" ? (
          <SignInRequired />
        ) : (
          <p className="text-body-secondary" role="status" data-testid="page-loading">
            Loading…
          </p>
        )}
      </main>
    </div>
  );
}
