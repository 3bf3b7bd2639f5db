import { useEffect, useState } from "react";
import { reconcileWithWelcome } from "../../account/account";
import { CallSession, connectForCalls } from "../../room/call";
import type { LocalMedia } from "../../rtc/media";
import type { CloseCause, SignalingClient } from "../../signaling/client";
import { explain } from "../explain";
import { accounts } from "./account";

export type CallLine =
  | { step: "signed_out"; error: string | null }
  | { step: "connecting" }
  | { step: "online"; client: SignalingClient; calls: CallSession };

/** Being reachable by name on the /call page: a connection, then a CallSession. */
export function useCallLine(media: LocalMedia) {
  const [line, setLine] = useState<CallLine>({ step: "signed_out", error: null });
  /** Why the connection ended for good without this side asking; null while it lives. */
  const [lost, setLost] = useState<CloseCause | null>(null);
  const client = line.step === "online" ? line.client : null;
  const calls = line.step === "online" ? line.calls : null;

  useEffect(() => {
    if (client === null || calls === null) return;
    const off = client.onClose((info) => {
      if (!info.expected) setLost(info.cause);
    });
    return () => {
      off();
      calls.dispose();
      client.close();
    };
  }, [client, calls]);

  const signIn = async (name: string) => {
    setLost(null);
    setLine({ step: "connecting" });
    try {
      const connected = await connectForCalls(name);
      reconcileWithWelcome(accounts, connected.welcome);
      setLine({ step: "online", client: connected, calls: new CallSession(connected, media) });
    } catch (error) {
      setLine({ step: "signed_out", error: explain(error, name) });
    }
  };

  const signOut = () => setLine({ step: "signed_out", error: null });

  return { line, lost, signIn, signOut };
}
