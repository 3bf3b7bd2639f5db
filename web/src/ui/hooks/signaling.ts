import { useSyncExternalStore } from "react";
import type { SignalingClient, SignalingState } from "../../signaling/client";

/** The signaling connection's state (open, reconnecting, closed…); re-renders when it changes. */
export function useSignalingState(client: SignalingClient): SignalingState {
  return useSyncExternalStore(
    (handler) => client.onStateChange(handler),
    () => client.state,
  );
}
