import { useEffect, useState } from "react";
import { serverRules, type ServerRules } from "../../room/connect";
import { useAccount } from "./account";

/** What the server requires (`/api/v1/health`), asked once per page load; null until known. */
export function useServerRules(): ServerRules | null {
  const [rules, setRules] = useState<ServerRules | null>(null);
  useEffect(() => {
    let live = true;
    void serverRules().then((found) => live && setRules(found));
    return () => {
      live = false;
    };
  }, []);
  return rules;
}

/**
 * Whether this page may connect: `required` when the server requires signing in and this
 * person is a guest (the WebSocket would be refused with 401), `loading` until both are known.
 * Once open it stays open: a meeting under way is not torn down because the account store
 * asked the server again (the server ends what it no longer allows).
 */
export function useSignInGate(): "loading" | "open" | "required" {
  const rules = useServerRules();
  const { status } = useAccount();
  const [opened, setOpened] = useState(false);
  const gate =
    rules === null || status === "loading"
      ? "loading"
      : rules.requireSignIn && status !== "signed_in"
        ? "required"
        : "open";
  if (gate === "open" && !opened) setOpened(true); // state from an earlier render (React docs)
  return opened ? "open" : gate;
}
