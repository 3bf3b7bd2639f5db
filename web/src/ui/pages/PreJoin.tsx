import { useEffect, useState, type FormEvent } from "react";
import { roomInfo, type RoomInfo } from "../../room/connect";
import { hostKeyFor } from "../../room/hostKeys";
import { inviteExpired, inviteFor, inviteRole } from "../../room/invites";
import type { LocalMedia, LocalMediaState } from "../../rtc/media";
import { AccountStatus } from "../components/AccountStatus";
import { ConnectionCheck } from "../components/ConnectionCheck";
import { DevicePickers } from "../components/DevicePickers";
import { MediaNotice } from "../components/MediaNotice";
import { NameField, nameTooLong } from "../components/NameField";
import { SelfPreview } from "../components/SelfPreview";
import { TopBar } from "../components/TopBar";
import { useConnectionCheck } from "../hooks/check";
import type { JoinProblem } from "../hooks/join";
import type { DisplayName } from "../hooks/name";
import { navigate } from "../hooks/route";
import { refocus } from "../focus";

interface Props {
  roomId: string;
  media: LocalMedia;
  local: LocalMediaState;
  display: DisplayName;
  password: string;
  setPassword: (password: string) => void;
  error: JoinProblem | null;
  connecting: boolean;
  onJoin: () => void;
  /** Forget the last refusal (before asking the room again). */
  onClearError: () => void;
}

type Info = RoomInfo | null | "loading";

/** While the meeting is full, how often the page asks again whether there is room. */
export const FULL_RECHECK_MS = 5000;

/**
 * Before joining: your preview, devices and name, and what the room asks of you — its
 * password, that its host locked it, or that a host lets people in ("Ask to join"). A
 * browser holding the room's host key (it created the room) is let in past all of those.
 */
export function PreJoin(p: Props) {
  const { roomId, display, password, error, connecting } = p;
  const { name } = display;
  const [info, reload, answers] = useRoomInfo(roomId);
  const [hostKey] = useState(() => hostKeyFor(roomId));
  // Read once, first thing: it also takes an invitation out of the address bar.
  const [invite] = useState(() => inviteFor(roomId));
  const invited = inviteRole(invite);
  const expired = inviteExpired(invite);
  const check = useConnectionCheck();
  const code = error?.code ?? "";

  // The room changed since the page read it (locked, or a password set): read it again.
  useEffect(() => {
    if (code === "room_locked" || code === "wrong_password") reload();
  }, [code, reload]);

  const known = info !== "loading" && info !== null ? info : null;
  // Full: the room info says so, or the server just refused a join as full and no newer
  // room info has come since (a room with a password does not tell its count).
  const [refusal, setRefusal] = useState<{ error: JoinProblem; answers: number } | null>(null);
  if (error !== null && code === "room_full" && refusal?.error !== error) setRefusal({ error, answers });
  const full =
    known?.full === true || (refusal !== null && refusal.error === error && refusal.answers === answers);
  useEffect(() => {
    if (!full) return;
    const timer = setInterval(reload, FULL_RECHECK_MS);
    return () => clearInterval(timer);
  }, [full, reload]);
  const isHost = hostKey !== null || invited === "host" || known?.host === true;
  const isGuest = invited === "guest"; // invited past the lobby and the password
  // A refusal is shown even to a host-key holder: the key may be one the server no longer knows.
  const locked = code === "room_locked" || (!isHost && known?.locked === true);
  const needsPassword = code === "wrong_password" || (!isHost && !isGuest && known?.protected === true);
  const knocks = !isHost && !isGuest && known?.lobby === true && !(needsPassword && password !== "");
  // A signed-in person may be a host by account (the server knows); let them try.
  const mayTry = !locked || display.account !== null;
  const passwordError = code === "wrong_password" ? error?.text : null;
  // Said by the "full" notice instead, which knows when there is room again.
  const otherError =
    error !== null && !["wrong_password", "room_locked", "room_full"].includes(code) ? error.text : null;
  const tooLong = display.account === null && nameTooLong(name);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (name.trim() !== "" && !tooLong && !full && mayTry) p.onJoin();
  };
  const retry = () => {
    p.onClearError();
    reload();
  };

  return (
    <div className="page">
      <TopBar>Meeting {roomId}</TopBar>
      <main className="container prejoin py-4" data-testid="prejoin">
        <div className="row g-4 align-items-center">
          <div className="col-lg-7">
            <SelfPreview media={p.media} state={p.local} name={name} />
          </div>
          <div className="col-lg-5">
            <h1 className="h3">Ready to join?</h1>
            <AccountStatus className="mb-2" />
            <p className="text-body-secondary mb-3" data-testid="room-status" aria-live="polite">
              {describeRoom(info)}
            </p>
            {full && (
              <div className="alert alert-info py-2 small" data-testid="room-full" role="status">
                {known?.full !== true && <strong>This meeting is full. </strong>}
                You can join as soon as someone leaves: this page checks every few seconds.
              </div>
            )}
            {isHost && (
              <p className="small text-body-secondary" data-testid="prejoin-host">
                {hostKey !== null
                  ? "You created this meeting, so you join as its host."
                  : invited === "host"
                    ? "Your invitation makes you a host of this meeting."
                    : "Your account is a host of this meeting."}
              </p>
            )}
            {isGuest && !isHost && (
              <p className="small text-body-secondary" data-testid="prejoin-invited">
                You are invited: you go straight in, no password or waiting needed.
              </p>
            )}
            {expired && (
              <div className="alert alert-warning py-2 small" role="status" data-testid="invite-expired">
                Your invitation has expired: ask whoever sent it for a new one. Meanwhile you can join
                the way anyone with this meeting&apos;s link can.
              </div>
            )}
            {locked && (
              <div
                className="alert alert-warning d-flex align-items-center gap-2 py-2"
                role="alert"
                data-testid="room-locked"
              >
                <span className="flex-grow-1">This meeting is locked by its host.</span>
                <button
                  type="button"
                  className="btn btn-sm btn-light"
                  data-testid="room-locked-retry"
                  onClick={retry}
                >
                  Try again
                </button>
              </div>
            )}
            <MediaNotice
              state={p.local}
              onRetry={() => void p.media.retry().then(() => refocus('[data-testid="prejoin-join"]'))}
            />
            <ConnectionCheck check={check} />
            <form onSubmit={submit}>
              <NameField id="prejoin-name" className="mb-3" {...display} />
              {needsPassword && (
                <PasswordField
                  value={password}
                  onChange={p.setPassword}
                  error={passwordError ?? null}
                  lobby={known?.lobby === true}
                />
              )}
              <DevicePickers
                state={p.local}
                onCamera={(id) => void p.media.useCamera(id)}
                onMic={(id) => void p.media.useMic(id)}
                onSpeaker={(id) => p.media.useSpeaker(id)}
                onProcessing={(change) => void p.media.setProcessing(change)}
              />
              {otherError && (
                <div className="alert alert-danger py-2 mt-2" role="alert" data-testid="join-error">
                  {otherError}
                </div>
              )}
              <div className="d-flex gap-2 mt-3">
                {mayTry && (
                  <button
                    type="submit"
                    className="btn btn-primary btn-lg flex-grow-1"
                    data-testid="prejoin-join"
                    disabled={connecting || name.trim() === "" || tooLong || full || p.local.acquiring}
                  >
                    {connecting ? (knocks ? "Asking…" : "Joining…") : knocks ? "Ask to join" : "Join now"}
                  </button>
                )}
                <button
                  type="button"
                  className="btn btn-outline-light btn-lg"
                  data-testid="prejoin-home"
                  onClick={() => navigate("/")}
                >
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

function PasswordField(props: {
  value: string;
  onChange: (value: string) => void;
  error: string | null;
  lobby: boolean;
}) {
  const { value, onChange, error, lobby } = props;
  const described = ["prejoin-password-hint", error ? "prejoin-password-error" : ""]
    .filter(Boolean)
    .join(" ");
  return (
    <div className="mb-3">
      <label htmlFor="prejoin-password" className="form-label">
        Meeting password
      </label>
      <input
        id="prejoin-password"
        type="password"
        className={`form-control ${error ? "is-invalid" : ""}`}
        autoComplete="off"
        value={value}
        aria-invalid={error ? true : undefined}
        aria-describedby={described}
        data-testid="prejoin-password"
        onChange={(e) => onChange(e.target.value)}
      />
      <div id="prejoin-password-hint" className="form-text">
        {lobby
          ? "This meeting has a password. Or leave it empty to ask a host to let you in."
          : "This meeting has a password. Ask the person who invited you."}
      </div>
      {error && (
        <div
          id="prejoin-password-error"
          className="invalid-feedback"
          role="alert"
          data-testid="prejoin-password-error"
        >
          {error}
        </div>
      )}
    </div>
  );
}

/**
 * The room as `GET /api/v1/rooms/{id}` tells it, a way to ask again, and how many answers
 * came so far (to tell a fresh answer from the one before).
 */
function useRoomInfo(roomId: string): [Info, () => void, number] {
  const [info, setInfo] = useState<{ info: Info; answers: number }>({ info: "loading", answers: 0 });
  const [asked, setAsked] = useState(0);
  useEffect(() => {
    let live = true;
    void roomInfo(roomId).then(
      (found) => live && setInfo((old) => ({ info: found, answers: old.answers + 1 })),
    );
    return () => {
      live = false;
    };
  }, [roomId, asked]);
  const [reload] = useState(() => () => setAsked((n) => n + 1));
  return [info.info, reload, info.answers];
}

function describeRoom(info: Info): string {
  if (info === "loading") return "Checking the meeting…";
  if (info === null) return "Can't reach the Salon server right now.";
  if (info.full)
    return info.members === null
      ? "This meeting is full."
      : `This meeting is full: ${info.members} people are in it.`;
  // No count for a protected or locked meeting: the server does not tell non-members.
  const count =
    info.members === null
      ? null
      : info.members === 0
        ? "No one else is here yet."
        : info.members === 1
          ? "1 person is in this meeting."
          : `${info.members} people are in this meeting.`;
  const notes = [
    info.protected ? (count === null ? "This meeting has a password." : "It has a password.") : "",
    info.lobby ? "A host lets people in." : "",
    info.locked && count === null && !info.protected ? "This meeting is locked." : "",
  ].filter(Boolean);
  return [count ?? "", ...notes].filter(Boolean).join(" ");
}
