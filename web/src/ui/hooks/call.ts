import { useEffect, useState } from "react";
import { reconcileWithWelcome } from "../../account/account";
import { CallSession, connectForCalls, ringingTitle } from "../../room/call";
import type { LocalMedia } from "../../rtc/media";
import type { CloseCause, SignalingClient } from "../../signaling/client";
import { explain } from "../explain";
import { sounds } from "../sounds";
import { accounts } from "./account";
import { useSoundPrefs } from "./sounds";

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

/** How often the tab's title changes while a call rings in. */
const TITLE_FLIP_MS = 1_000;

/**
 * Ask for permission to show desktop notifications, once, if it was never asked. Browsers
 * allow the question only from a user gesture (call it from a click or a submit).
 */
export function askNotificationPermission(): void {
  if (typeof Notification === "undefined" || Notification.permission !== "default") return;
  try {
    void Promise.resolve(Notification.requestPermission()).catch(() => undefined);
  } catch {
    // an old browser without the promise form: no notifications
  }
}

/**
 * While a call rings in from `from`: the ringtone (when it is turned on; it stops as soon as
 * it is turned off), a tab title that alternates "📞 Sam is calling" with the page's own, and
 * a desktop notification when allowed and the page is not in front (a click on it brings the
 * tab forward). All of it stops when the call is answered, declined or gone.
 */
export function useIncomingCallAlerts(ringing: boolean, from: string | null): void {
  const [prefs] = useSoundPrefs();
  const ringtone = prefs.ringtone;
  useEffect(() => {
    if (!ringing || !ringtone) return;
    return sounds.ring();
  }, [ringing, ringtone]);

  useEffect(() => {
    if (!ringing || from === null) return;
    const pageTitle = document.title;
    let tick = 0;
    const flip = () => {
      document.title = ringingTitle(from, tick++, pageTitle);
    };
    flip();
    const timer = setInterval(flip, TITLE_FLIP_MS);
    let notice: Notification | null = null;
    const notify = () => {
      const inFront = document.visibilityState === "visible" && document.hasFocus();
      if (notice === null && !inFront) notice = showCallNotification(from);
    };
    notify();
    document.addEventListener("visibilitychange", notify);
    window.addEventListener("blur", notify);
    return () => {
      clearInterval(timer);
      document.removeEventListener("visibilitychange", notify);
      window.removeEventListener("blur", notify);
      notice?.close();
      document.title = pageTitle;
    };
  }, [ringing, from]);
}

function showCallNotification(from: string): Notification | null {
  if (typeof Notification === "undefined" || Notification.permission !== "granted") return null;
  try {
    const notice = new Notification(`${from} is calling you`, {
      body: "Incoming video call. Open Salon to answer.",
      tag: "salon-incoming-call",
      icon: "/favicon.svg",
      requireInteraction: true,
    });
    notice.onclick = () => {
      window.focus();
      notice.close();
    };
    return notice;
  } catch {
    return null; // Chrome on Android only notifies from a service worker
  }
}
