import { useState } from "react";
import type { Account } from "../../account/account";
import { useAccount } from "./account";

const KEY = "salon.name";

function stored(): string {
  try {
    return localStorage.getItem(KEY) ?? "";
  } catch {
    return "";
  }
}

/** The person's display name, remembered in localStorage. */
export function useRememberedName(): [string, (name: string) => void] {
  const [name, setName] = useState(stored);
  const update = (value: string) => {
    setName(value);
    try {
      localStorage.setItem(KEY, value.trim());
    } catch {
      // Private mode: the name is simply not remembered.
    }
  };
  return [name, update];
}

export interface DisplayName {
  /** The name to show and join under: the account's when signed in. */
  name: string;
  setName: (name: string) => void;
  /** Signed in: the name comes from the account and is changed on the Account page. */
  account: Account | null;
}

/** The name a person joins under: their account's display name, else the remembered one. */
export function useDisplayName(): DisplayName {
  const [remembered, setName] = useRememberedName();
  const { account } = useAccount();
  return { name: account?.display_name ?? remembered, setName, account };
}
