import { useState } from "react";

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
