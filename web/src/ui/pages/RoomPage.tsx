import { useMemo, useState } from "react";
import type { RoomSession } from "../../room/session";
import type { LocalMedia } from "../../rtc/media";
import type { SignalingClient } from "../../signaling/client";
import { nameTooLong } from "../components/NameField";
import { LeftPage, LobbyWaiting, PutOutPage } from "../components/RoomExits";
import { RoomView } from "../components/RoomView";
import { SignedInPage } from "../components/SignInRequired";
import { useRoomJoin } from "../hooks/join";
import { useLocalMedia } from "../hooks/media";
import { useDisplayName } from "../hooks/name";
import { useStore } from "../hooks/store";
import { PreJoin } from "./PreJoin";

/**
 * `/r/<room>`: pre-join, then the room (or its lobby first), then "you left" — or removed,
 * ended, not let in. On a server that requires signing in, a guest is asked to sign in
 * before anything connects.
 */
export function RoomPage({ roomId }: { roomId: string }) {
  return (
    <SignedInPage title={`Meeting ${roomId}`}>
      <RoomFlow roomId={roomId} />
    </SignedInPage>
  );
}

function RoomFlow({ roomId }: { roomId: string }) {
  const [media, local] = useLocalMedia();
  const display = useDisplayName();
  const name = display.name;
  const [password, setPassword] = useState("");
  const sendable = name.trim() !== "" && (display.account !== null || !nameTooLong(name));
  const who = display.account?.id ?? "";
  const joiner = useMemo(() => (sendable ? { name: name.trim(), who } : null), [sendable, name, who]);
  const { state, join, leave, cancel, clearError } = useRoomJoin(roomId, media, joiner);
  const again = () => void join(name.trim(), password);

  if (state.step === "in") {
    return (
      <InRoom
        roomId={roomId}
        session={state.session}
        client={state.client}
        media={media}
        onLeave={leave}
        onCancel={cancel}
        onRejoin={again}
      />
    );
  }
  if (state.step === "out") return <PutOutPage departure={state.departure} />;
  if (state.step === "left") return <LeftPage onRejoin={again} />;
  return (
    <PreJoin
      roomId={roomId}
      media={media}
      local={local}
      display={display}
      password={password}
      setPassword={setPassword}
      error={state.step === "prejoin" ? state.error : null}
      connecting={state.step === "connecting"}
      onJoin={again}
      onClearError={clearError}
    />
  );
}

interface InRoomProps {
  roomId: string;
  session: RoomSession;
  client: SignalingClient;
  media: LocalMedia;
  onLeave: () => void;
  onCancel: () => void;
  onRejoin: () => void;
}

/** The room, or its lobby while a host has not let this side in yet. */
function InRoom({ roomId, session, client, media, onLeave, onCancel, onRejoin }: InRoomProps) {
  const snap = useStore(session);
  if (snap.phase === "waiting") {
    return (
      <LobbyWaiting
        roomId={roomId}
        media={media}
        name={snap.selfName}
        lost={snap.lost}
        signedOut={snap.lostReason === "signed_out"}
        onCancel={onCancel}
        onRetry={onRejoin}
      />
    );
  }
  return (
    <RoomView
      session={session}
      media={media}
      title={`Meeting ${roomId}`}
      leaveLabel="Leave"
      inviteLink={`${window.location.origin}/r/${roomId}`}
      maxChatChars={client.welcome?.limits.max_chat_chars ?? 4000}
      onLeave={onLeave}
      // Signed out (4006): going on as a guest starts at the pre-join page, to choose a name.
      onRejoin={snap.lostReason === "signed_out" ? onCancel : onRejoin}
    />
  );
}
