import { useState, type FormEvent } from "react";
import type { CallSession } from "../../room/call";
import type { LocalMedia, LocalMediaState } from "../../rtc/media";
import type { CloseCause, SignalingClient } from "../../signaling/client";
import { Avatar } from "../components/Avatar";
import { CallStatus } from "../components/CallStatus";
import { IncomingCall } from "../components/IncomingCall";
import { AccountStatus } from "../components/AccountStatus";
import { MediaNotice } from "../components/MediaNotice";
import { ReconnectingBanner } from "../components/ReconnectingBanner";
import { RoomView } from "../components/RoomView";
import { SelfPreview } from "../components/SelfPreview";
import { SignedInPage } from "../components/SignInRequired";
import { SignedOutNotice } from "../components/SignedOutNotice";
import { TopBar } from "../components/TopBar";
import { SoundSettings } from "../components/SoundSettings";
import { askNotificationPermission, useCallLine, useIncomingCallAlerts } from "../hooks/call";
import { useLocalMedia } from "../hooks/media";
import { useDisplayName } from "../hooks/name";
import { useSignalingState } from "../hooks/signaling";
import { navigate } from "../hooks/route";
import { useStore } from "../hooks/store";

/** `/call`: be reachable by name, see who is online, call and answer. */
export function CallPage() {
  return (
    <SignedInPage title="Direct calls">
      <CallFlow />
    </SignedInPage>
  );
}

function CallFlow() {
  const [media, local] = useLocalMedia();
  const { name, setName, account } = useDisplayName();
  const { line, lost, signIn, signOut } = useCallLine(media);

  if (line.step === "online") {
    return (
      <Phone
        client={line.client}
        calls={line.calls}
        media={media}
        local={local}
        lost={lost}
        onSignOut={signOut}
        onReconnect={() => void signIn(name.trim())}
      />
    );
  }
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() === "") return;
    // A desktop notice for calls that ring while this tab is in the background; browsers
    // let a page ask only from a user gesture such as this one.
    askNotificationPermission();
    void signIn(name.trim());
  };
  return (
    <div className="page">
      <TopBar>Direct calls</TopBar>
      <main className="container narrow py-5" data-testid="call-signin">
        <h1 className="h3 mb-1">Call someone</h1>
        <p className="text-body-secondary">
          Choose the name people will call you by. Anyone online can then call you, and you them.
        </p>
        <AccountStatus className="mb-3" />
        <form onSubmit={submit} className="card card-body">
          <label htmlFor="call-name" className="form-label">
            Your name
          </label>
          <div className="input-group">
            <input
              id="call-name"
              className="form-control"
              autoComplete="name"
              required
              maxLength={64}
              value={name}
              readOnly={account !== null}
              onChange={(e) => setName(e.target.value)}
            />
            <button
              type="submit"
              className="btn btn-primary"
              data-testid="call-go-online"
              disabled={line.step === "connecting" || name.trim() === ""}
            >
              {line.step === "connecting" ? "Connecting…" : "Go online"}
            </button>
          </div>
          {line.step === "signed_out" && line.error && (
            <div className="alert alert-danger py-2 mt-3 mb-0" role="alert">
              {line.error}
            </div>
          )}
        </form>
        <button type="button" className="btn btn-link mt-3 px-0" onClick={() => navigate("/")}>
          ← Back to home
        </button>
      </main>
    </div>
  );
}

interface PhoneProps {
  client: SignalingClient;
  calls: CallSession;
  media: LocalMedia;
  local: LocalMediaState;
  lost: CloseCause | null;
  onSignOut: () => void;
  onReconnect: () => void;
}

function Phone({ client, calls, media, local, lost, onSignOut, onReconnect }: PhoneProps) {
  const call = useStore(calls);
  const signaling = useSignalingState(client);
  const me = client.welcome?.name ?? "";
  const [peer, setPeer] = useState("");
  useIncomingCallAlerts(call.phase === "incoming", call.peer);

  if (call.phase === "in_call" && call.room !== null) {
    return (
      <RoomView
        session={call.room}
        media={media}
        title={`Call with ${call.peer ?? ""}`}
        leaveLabel="Hang up"
        maxChatChars={client.welcome?.limits.max_chat_chars ?? 4000}
        onLeave={() => calls.hangUp()}
      />
    );
  }
  const dial = (event: FormEvent) => {
    event.preventDefault();
    calls.call(peer);
  };
  const others = call.online.filter((n) => n.toLowerCase() !== me.toLowerCase());
  return (
    <div className="page">
      <TopBar>
        <AccountStatus />
      </TopBar>
      <main className="container py-4" data-testid="phone">
        {signaling === "reconnecting" && <ReconnectingBanner />}
        {lost === "signed_out" && (
          <SignedOutNotice consequence="Nobody can call you right now." onAsGuest={onSignOut} />
        )}
        {lost !== null && lost !== "signed_out" && (
          <div
            className="alert alert-danger d-flex align-items-center gap-2"
            role="alert"
            data-testid="lost"
            data-reason={lost}
          >
            <span className="flex-grow-1">
              {lost === "replaced"
                ? "Salon was opened in another tab or window: calls to you ring there now."
                : "Connection to the server was lost: nobody can call you right now."}
            </span>
            <button
              type="button"
              className="btn btn-light btn-sm"
              data-testid="lost-retry"
              onClick={onReconnect}
            >
              {lost === "replaced" ? "Use here" : "Reconnect"}
            </button>
          </div>
        )}
        {call.unreachable !== null && (
          <div
            className="alert alert-warning d-flex align-items-center gap-2"
            role="alert"
            data-testid="unreachable"
          >
            <span className="flex-grow-1">
              Your name now belongs to a registered account; you can no longer be called as{" "}
              <strong>{call.unreachable}</strong>.
            </span>
            <button
              type="button"
              className="btn btn-light btn-sm"
              data-testid="unreachable-change-name"
              onClick={onSignOut}
            >
              Choose another name
            </button>
          </div>
        )}
        {call.phase === "incoming" && (
          <IncomingCall
            from={call.peer ?? ""}
            onAccept={() => calls.accept()}
            onDecline={() => calls.decline()}
          />
        )}
        <div className="row g-4">
          <div className="col-lg-7">
            <div className="d-flex align-items-center gap-2 mb-3">
              <span className="fs-5">
                Your ID: <strong data-testid="my-id">{me}</strong>
              </span>
              <button
                type="button"
                className="btn btn-sm btn-outline-light ms-auto"
                data-testid="change-name"
                onClick={onSignOut}
              >
                Change name
              </button>
            </div>
            <form onSubmit={dial} className="card card-body mb-3">
              <label htmlFor="peer-name" className="form-label">
                Enter peer name to call
              </label>
              <div className="input-group">
                <input
                  id="peer-name"
                  data-testid="peer-name"
                  className="form-control"
                  placeholder="Enter peer name to call"
                  value={peer}
                  maxLength={64}
                  onChange={(e) => setPeer(e.target.value)}
                />
                <button
                  type="submit"
                  className="btn btn-success"
                  data-testid="call-submit"
                  disabled={peer.trim() === "" || call.phase !== "idle" || lost !== null}
                >
                  Call
                </button>
              </div>
              <CallStatus
                phase={call.phase}
                peer={call.peer}
                outcome={call.outcome}
                onCancel={() => calls.cancel()}
              />
            </form>
            <section className="card card-body" aria-labelledby="online-title">
              <h2 id="online-title" className="h6">
                Online now
              </h2>
              {others.length === 0 && (
                <p className="text-body-secondary small m-0">Nobody else is online yet.</p>
              )}
              <ul className="list-unstyled m-0" data-testid="online">
                {others.map((n) => (
                  <li key={n} className="people-row">
                    <Avatar name={n} size="sm" />
                    <span className="flex-grow-1 text-truncate">{n}</span>
                    <button
                      type="button"
                      className="btn btn-sm btn-outline-success"
                      aria-label={`Call ${n}`}
                      data-testid="call-person"
                      data-name={n}
                      disabled={call.phase !== "idle" || lost !== null}
                      onClick={() => calls.call(n)}
                    >
                      Call
                    </button>
                  </li>
                ))}
              </ul>
            </section>
          </div>
          <div className="col-lg-5">
            <SelfPreview media={media} state={local} name={me} />
            <div className="mt-3">
              <MediaNotice state={local} />
            </div>
            <div className="card card-body mt-3">
              <SoundSettings />
            </div>
          </div>
        </div>
      </main>
    </div>
  );
}
