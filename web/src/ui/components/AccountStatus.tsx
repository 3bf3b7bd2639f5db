import { useAccount } from "../hooks/account";
import { Link } from "./Link";

/** "Signed in as <name>" with a link to the Account page, or Sign in / Create account. */
export function AccountStatus({ className = "" }: { className?: string }) {
  const { status, account } = useAccount();
  if (status === "loading") return null;
  const here = window.location.pathname;
  const back = here.startsWith("/r/") || here === "/call" ? `?next=${encodeURIComponent(here)}` : "";
  if (account !== null) {
    return (
      <p className={`account-status small m-0 ${className}`} data-testid="account-status">
        Signed in as <strong data-testid="signed-in-name">{account.display_name}</strong>
        {" · "}
        <Link to="/account" testId="account-link">
          Account
        </Link>
      </p>
    );
  }
  return (
    <p className={`account-status small m-0 ${className}`} data-testid="account-status">
      <Link to={`/login${back}`} testId="sign-in-link">
        Sign in
      </Link>
      {" · "}
      <Link to={`/register${back}`} testId="register-link">
        Create account
      </Link>
    </p>
  );
}
