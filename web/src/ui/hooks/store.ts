import { useSyncExternalStore } from "react";

/** Any framework-free object that exposes a snapshot and a change subscription. */
export interface Store<T> {
  readonly snapshot: T;
  subscribe(handler: () => void): () => void;
}

/** Render from a store's snapshot; re-render when it changes. */
export function useStore<T>(store: Store<T>): T {
  return useSyncExternalStore(
    (handler) => store.subscribe(handler),
    () => store.snapshot,
  );
}
