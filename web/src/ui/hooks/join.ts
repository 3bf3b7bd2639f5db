import { useEffect, useState } from "react";
import { reconcileWithWelcome } from "../../account/account";
import { joinRoom } from "../../room/connect";
import type { RoomSession } from "../../room/session";
import type { LocalMedia } from "../../rtc/media";
import type { SignalingClient } from "../../signaling/client";
import { explain } from "../explain";
import { accounts } from "./account";

export type JoinStep =
  | { step: "prejoin"; error: string | null }
  | { step: "connecting" }
  | { step: "in"; session: RoomSession; client: SignalingClient }
  | { step: "left" };

/** Joining and leaving one room: the steps the room page shows. */
export function useRoomJoin(roomId: string, media: LocalMedia) {
  const [state, setState] = useState<JoinStep>({ step: "prejoin", error: null });

  useEffect(() => {
    if (state.step !== "in") return;
    return () => {
      state.session.dispose();
      state.client.close();
    };
  }, [state]);

  const join = async (name: string) => {
    setState({ step: "connecting" });
    try {
      const { client, session } = await joinRoom(name, roomId, media);
      reconcileWithWelcome(accounts, client.welcome);
      setState({ step: "in", client, session });
    } catch (error) {
      setState({ step: "prejoin", error: explain(error, name) });
    }
  };

  const leave = () => {
    if (state.step === "in") state.session.leave();
    setState({ step: "left" });
  };

  return { state, join, leave };
}
