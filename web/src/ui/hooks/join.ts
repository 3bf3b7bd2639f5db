import { useEffect, useState } from "react";
import { reconcileWithWelcome } from "../../account/account";
import { joinRoom } from "../../room/connect";
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

/** Joining and leaving one room: the steps the room page shows. */
export function useRoomJoin(roomId: string, media: LocalMedia) {
  const [state, setState] = useState<JoinStep>({ step: "prejoin", error: null });

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
      const { client, session } = await joinRoom(name, roomId, media, {
        ...(password !== "" ? { password } : {}),
        hostKey: hostKeyFor(roomId),
        invite: inviteFor(roomId),
      });
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
