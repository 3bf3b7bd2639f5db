import { useEffect, useState, type FormEvent } from "react";
import { roomInfo, type RoomInfo } from "../../room/connect";
import type { LocalMedia, LocalMediaState } from "../../rtc/media";
import { ConnectionCheck } from "../components/ConnectionCheck";
import { DevicePickers } from "../components/DevicePickers";
import { AccountStatus } from "../components/AccountStatus";
import { MediaNotice } from "../components/MediaNotice";
import { NameField } from "../components/NameField";
import { RoomView } from "../components/RoomView";
import { SelfPreview } from "../components/SelfPreview";
import { TopBar } from "../components/TopBar";
import { useConnectionCheck } from "../hooks/check";
import { useRoomJoin } from "../hooks/join";
import { useLocalMedia } from "../hooks/media";
import { useDisplayName, type DisplayName } from "../hooks/name";
import { navigate } from "../hooks/route";

/** `/r/<room>`: pre-join, then the room, then "you left". */
export function RoomPage({ roomId }: { roomId: string }) {
  const [media, local] = useLocalMedia();
  const display = useDisplayName();
  const name = display.name;
  const { state, join, leave } = useRoomJoin(roomId, media);
  const link = `${window.location.origin}/r/${roomId}`;

  if (state.step === "in") {
    return (
      <RoomView
        session={state.session}
        media={media}
        title={`Meeting ${roomId}`}
        leaveLabel="Leave"
        inviteLink={link}
        maxChatChars={state.client.welcome?.limits.max_chat_chars ?? 4000}
        onLeave={leave}
        onRejoin={() => void join(name)}
      />
    );
  }
  if (state.step === "left") {
    return (
      <div className="page">
        <TopBar />
        <main className="container narrow text-center py-5" data-testid="left">
          <h1 className="h3 mb-3">You left the meeting</h1>
          <div className="d-flex gap-2 justify-content-center">
            <button type="button" className="btn btn-primary" onClick={() => void join(name)}>
              Rejoin
            </button>
            <button type="button" className="btn btn-outline-light" onClick={() => navigate("/")}>
              Back to home
            </button>
          </div>
        </main>
      </div>
    );
  }
  const error = state.step === "prejoin" ? state.error : null;
  return (
    <PreJoin
      roomId={roomId}
      media={media}
      local={local}
      display={display}
      error={error}
      connecting={state.step === "connecting"}
      onJoin={() => void join(name.trim())}
    />
  );
}

interface PreJoinProps {
  roomId: string;
  media: LocalMedia;
  local: LocalMediaState;
  display: DisplayName;
  error: string | null;
  connecting: boolean;
  onJoin: () => void;
}

function PreJoin({ roomId, media, local, display, error, connecting, onJoin }: PreJoinProps) {
  const { name } = display;
  const info = useRoomInfo(roomId);
  const check = useConnectionCheck();
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() !== "") onJoin();
  };
  return (
    <div className="page">
      <TopBar>Meeting {roomId}</TopBar>
      <main className="container prejoin py-4" data-testid="prejoin">
        <div className="row g-4 align-items-center">
          <div className="col-lg-7">
            <SelfPreview media={media} state={local} name={name} />
          </div>
          <div className="col-lg-5">
            <h1 className="h3">Ready to join?</h1>
            <AccountStatus className="mb-2" />
            <p className="text-body-secondary mb-3" data-testid="room-status">
              {describeRoom(info)}
            </p>
            <MediaNotice state={local} />
            <ConnectionCheck check={check} />
            <form onSubmit={submit}>
              <NameField id="prejoin-name" className="mb-3" {...display} />
              <DevicePickers
                state={local}
                onCamera={(id) => void media.useCamera(id)}
                onMic={(id) => void media.useMic(id)}
                onSpeaker={(id) => media.useSpeaker(id)}
              />
              {error && (
                <div className="alert alert-danger py-2 mt-2" role="alert" data-testid="join-error">
                  {error}
                </div>
              )}
              <div className="d-flex gap-2 mt-3">
                <button
                  type="submit"
                  className="btn btn-primary btn-lg flex-grow-1"
                  disabled={connecting || name.trim() === "" || local.acquiring}
                >
                  {connecting ? "Joining…" : "Join now"}
                </button>
                <button type="button" className="btn btn-outline-light btn-lg" onClick={() => navigate("/")}>
                  Home
                </button>
              </div>
            </form>
          </div>
        </div>
      </main>
    </div>
  );
}

function useRoomInfo(roomId: string): RoomInfo | null | "loading" {
  const [info, setInfo] = useState<RoomInfo | null | "loading">("loading");
  useEffect(() => {
    let live = true;
    void roomInfo(roomId).then((found) => live && setInfo(found));
    return () => {
      live = false;
    };
  }, [roomId]);
  return info;
}

function describeRoom(info: RoomInfo | null | "loading"): string {
  if (info === "loading") return "Checking the meeting…";
  if (info === null) return "Can't reach the Salon server right now.";
  if (info.full) return "This meeting is full.";
  if (info.members === 0) return "No one else is here yet.";
  return info.members === 1 ? "1 person is in this meeting." : `${info.members} people are in this meeting.`;
}
