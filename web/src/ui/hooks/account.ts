import { useEffect } from "react";
import { AccountStore, type AccountState } from "../../account/account";
import { useStore } from "./store";

/** The page's one account store: every component sees the same signed-in state. */
export const accounts = new AccountStore();

/** Who is signed in; asks the server once, then re-renders on sign-in, sign-out and changes. */
export function useAccount(): AccountState {
  useEffect(() => {
    void accounts.load();
  }, []);
  return useStore(accounts);
}
