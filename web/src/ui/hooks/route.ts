import { useSyncExternalStore } from "react";

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

/** Go to a path inside the app without reloading. */
export function navigate(path: string): void {
  window.history.pushState(null, "", path);
  listeners.forEach((l) => l());
}

/** The current path; re-renders on navigation. */
export function usePath(): string {
  return useSyncExternalStore(
    (handler) => {
      listeners.add(handler);
      return () => listeners.delete(handler);
    },
    () => window.location.pathname,
  );
}
