import { useEffect, useRef, useState } from "react";
import { reconcileWithWelcome } from "../../account/account";
import { joinRoom } from "../../room/connect";
import { EarlyGreeting } from "../../room/early";
import { hostKeyFor } from "../../room/hostKeys";
import { inviteFor } from "../../room/invites";
import type { Departure } from "../../room/hosting";
import type { RoomSession } from "../../room/session";
import type { LocalMedia } from "../../rtc/media";
import { SignalingError, type SignalingClient } from "../../signaling/client";
import { explainJoin } from "../explain";
import { accounts } from "./account";

/** Why a join was refused, in a sentence, with the server's code to act on. */
export interface JoinProblem {
  code: string;
  text: string;
}

export type JoinStep =
  | { step: "prejoin"; error: JoinProblem | null }
  | { step: "connecting" }
  /** In the room, or in its lobby: the session's phase says which. */
  | { step: "in"; session: RoomSession; client: SignalingClient }
  /** This side left. */
  | { step: "left" }
  /** A host removed this side, ended the meeting, or did not let it in. */
  | { step: "out"; departure: Departure };

/** Departures a person did not choose: each has its own page, without a way back in. */
const PUT_OUT = new Set(["removed", "ended", "denied"]);

/** How long the name must stay unchanged before the pre-join page greets the server with it. */
export const EARLY_GREETING_DELAY_MS = 500;

/** Who the pre-join page would join as: the name, and the signed-in account's id or "". */
export interface Joiner {
  name: string;
  who: string;
}

/**
 * Joining and leaving one room: the steps the room page shows. While the person is on the
 * pre-join page with a name to join under (`joiner`; `null`: no name yet, or one the page
 * will not send), the signaling connection is opened and greeted ahead of Join
 * (src/room/early.ts), as a guest or as the signed-in account: a plain `hello` takes nothing
 * from the account's place in another tab until Join (docs/PROTOCOL.md §2.8).
 */
export function useRoomJoin(roomId: string, media: LocalMedia, joiner: Joiner | null = null) {
  const [state, setState] = useState<JoinStep>({ step: "prejoin", error: null });
  const early = useRef<EarlyGreeting | null>(null);
  early.current ??= new EarlyGreeting();
  const who = joiner?.who ?? "";
  // Back from another tab (where the person may have signed in): greet again, with the
  // cookies as they are now.
  const [returns, setReturns] = useState(0);
  useEffect(() => {
    const back = () => {
      if (document.visibilityState !== "visible") return;
      early.current?.drop();
      setReturns((n) => n + 1);
    };
    document.addEventListener("visibilitychange", back);
    return () => document.removeEventListener("visibilitychange", back);
  }, []);

  const prejoin = state.step === "prejoin";
  const name = joiner?.name ?? null;
  useEffect(() => {
    if (!prejoin) return;
    if (name === null) {
      early.current?.drop(); // the name was cleared
      return;
    }
    const timer = setTimeout(() => early.current?.prepare(name, who), EARLY_GREETING_DELAY_MS);
    return () => clearTimeout(timer);
  }, [prejoin, name, who, returns]);
  useEffect(() => () => early.current?.drop(), []); // the page is left

  useEffect(() => {
    if (state.step !== "in") return;
    const { session, client } = state;
    const check = () => {
      const { departure } = session.snapshot;
      if (departure !== null && PUT_OUT.has(departure.reason))
        setState({ step: "out", departure });
    };
    const off = session.subscribe(check);
    check(); // it may have come between the join and this subscription
    return () => {
      off();
      session.dispose();
      client.close();
    };
  }, [state]);

  /** Join under `name`, with the password typed (if any) and this browser's host key. */
  const join = async (name: string, password = "") => {
    setState({ step: "connecting" });
    try {
      const greeted = (await early.current?.take(name, who)) ?? null;
      const options = {
        ...(password !== "" ? { password } : {}),
        hostKey: hostKeyFor(roomId),
        invite: inviteFor(roomId),
      };
      const { client, session } = await joinRoom(name, roomId, media, options, greeted);
      reconcileWithWelcome(accounts, client.welcome);
      setState({ step: "in", client, session });
    } catch (error) {
      const code = error instanceof SignalingError ? error.code : "";
      setState({ step: "prejoin", error: { code, text: explainJoin(error, name, password) } });
    }
  };

  const leave = () => {
    if (state.step === "in") state.session.leave();
    setState({ step: "left" });
  };

  /** Stop waiting in the lobby: back to the pre-join page. */
  const cancel = () => {
    if (state.step === "in") state.session.leave();
    setState({ step: "prejoin", error: null });
  };

  const clearError = () => {
    if (state.step === "prejoin" && state.error !== null) setState({ step: "prejoin", error: null });
  };

  return { state, join, leave, cancel, clearError };
}
