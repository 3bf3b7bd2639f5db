import { useEffect, useRef, useState, type FormEvent } from "react";
import type { HostActions } from "../../room/hostActions";
import type { Knocker } from "../../room/hosting";

/** What a host can do to the room (src/room/hostActions.ts). */
export type RoomActions = Pick<
  HostActions,
  "lock" | "setPassword" | "setLobby" | "admit" | "deny" | "endMeeting"
>;

interface Props {
  isHost: boolean;
  locked: boolean;
  lobby: boolean;
  protected: boolean;
  waiting: readonly Knocker[];
  actions: RoomActions;
}

/**
 * The room's protections: lock, password, "Ask to join" and who waits, and ending the
 * meeting. Everyone sees how the room stands; only hosts can change it. The switches show
 * what the server says, so they move when the room really changed.
 */
export function SecurityPanel(p: Props) {
  return (
    <section className="security p-3" data-testid="security" aria-label="Meeting security">
      {!p.isHost && (
        <p className="small text-body-secondary" data-testid="security-read-only">
          Only hosts can change these settings.
        </p>
      )}
      <Switch
        id="security-lock"
        label="Lock the meeting"
        hint="Nobody new can join or ask to join."
        checked={p.locked}
        disabled={!p.isHost}
        onChange={p.actions.lock}
      />
      <Switch
        id="security-lobby"
        label="Ask to join"
        hint="People wait until a host lets them in."
        checked={p.lobby}
        disabled={!p.isHost}
        onChange={p.actions.setLobby}
      />
      <PasswordForm isHost={p.isHost} protected={p.protected} onSave={p.actions.setPassword} />
      {p.isHost && <Waiting waiting={p.waiting} onAdmit={p.actions.admit} onDeny={p.actions.deny} />}
      {p.isHost && <EndMeeting onEnd={p.actions.endMeeting} />}
    </section>
  );
}

function Switch(props: {
  id: string;
  label: string;
  hint: string;
  checked: boolean;
  disabled: boolean;
  onChange: (on: boolean) => void;
}) {
  const { id, label, hint, checked, disabled, onChange } = props;
  return (
    <div className="form-check form-switch mb-3">
      <input
        id={id}
        className="form-check-input"
        type="checkbox"
        role="switch"
        checked={checked}
        disabled={disabled}
        aria-describedby={`${id}-hint`}
        data-testid={id}
        onChange={(e) => onChange(e.target.checked)}
      />
      <label htmlFor={id} className="form-check-label">
        {label}
      </label>
      <div id={`${id}-hint`} className="form-text mt-0">
        {hint}
      </div>
    </div>
  );
}

/** Set, change or remove the password; the old one is never shown (nor known here). */
function PasswordForm({
  isHost,
  protected: has,
  onSave,
}: {
  isHost: boolean;
  protected: boolean;
  onSave: (password: string | null) => void;
}) {
  const [draft, setDraft] = useState("");
  const save = (event: FormEvent) => {
    event.preventDefault();
    if (draft === "") return;
    onSave(draft);
    setDraft("");
  };
  return (
    <div className="mb-3">
      <h3 className="h6 mb-1">Password</h3>
      <p className="small text-body-secondary mb-2" data-testid="security-password-status">
        {has ? "This meeting has a password." : "This meeting has no password."}
      </p>
      {isHost && (
        <form onSubmit={save}>
          <label htmlFor="security-password" className="form-label small">
            {has ? "New password" : "Set a password"}
          </label>
          <div className="d-flex gap-2">
            <input
              id="security-password"
              type="password"
              className="form-control form-control-sm"
              autoComplete="new-password"
              value={draft}
              data-testid="security-password"
              onChange={(e) => setDraft(e.target.value)}
            />
            <button
              type="submit"
              className="btn btn-sm btn-primary"
              disabled={draft === ""}
              data-testid="security-password-save"
            >
              Save
            </button>
            <button
              type="button"
              className="btn btn-sm btn-outline-light"
              disabled={!has}
              aria-label="Remove the password"
              data-testid="security-password-remove"
              onClick={() => onSave(null)}
            >
              Remove
            </button>
          </div>
          <div className="form-text">People already here stay. Anyone who joins later needs it.</div>
        </form>
      )}
    </div>
  );
}

function Waiting({
  waiting,
  onAdmit,
  onDeny,
}: {
  waiting: readonly Knocker[];
  onAdmit: (id: string) => void;
  onDeny: (id: string) => void;
}) {
  return (
    <div className="mb-3">
      <h3 className="h6 mb-2">Waiting to join</h3>
      {waiting.length === 0 ? (
        <p className="small text-body-secondary" data-testid="lobby-empty">
          Nobody is waiting.
        </p>
      ) : (
        <ul className="list-unstyled m-0" aria-label="Waiting to join" data-testid="lobby-list">
          {waiting.map((k) => (
            <li
              key={k.id}
              className="people-row"
              data-testid="lobby-person"
              data-name={k.name}
              data-removed={k.removed ? "true" : "false"}
            >
              <span className="flex-grow-1 text-truncate">
                {k.name}
                {k.removed && <span className="badge text-bg-warning ms-2">removed earlier</span>}
              </span>
              <KnockButtons knocker={k} onAdmit={onAdmit} onDeny={onDeny} prefix="lobby" />
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

/** Admit and Deny for one person waiting; `prefix` keeps the panel's and the notice's ids apart. */
export function KnockButtons({
  knocker,
  onAdmit,
  onDeny,
  prefix,
}: {
  knocker: Knocker;
  onAdmit: (id: string) => void;
  onDeny: (id: string) => void;
  prefix: string;
}) {
  return (
    <>
      <button
        type="button"
        className="btn btn-sm btn-success"
        aria-label={`Admit ${knocker.name}`}
        data-testid={`${prefix}-admit`}
        onClick={() => onAdmit(knocker.id)}
      >
        Admit
      </button>
      <button
        type="button"
        className="btn btn-sm btn-outline-light"
        aria-label={`Deny ${knocker.name}`}
        data-testid={`${prefix}-deny`}
        onClick={() => onDeny(knocker.id)}
      >
        Deny
      </button>
    </>
  );
}

function EndMeeting({ onEnd }: { onEnd: () => void }) {
  const [asking, setAsking] = useState(false);
  const cancel = useRef<HTMLButtonElement>(null);
  const opener = useRef<HTMLButtonElement>(null);
  const wasAsking = useRef(false);
  useEffect(() => {
    if (asking) cancel.current?.focus();
    else if (wasAsking.current) opener.current?.focus();
    wasAsking.current = asking;
  }, [asking]);
  if (!asking)
    return (
      <button
        ref={opener}
        type="button"
        className="btn btn-outline-danger w-100"
        data-testid="end-meeting"
        onClick={() => setAsking(true)}
      >
        End meeting for everyone
      </button>
    );
  return (
    <div
      className="confirm-box"
      role="group"
      aria-label="End the meeting for everyone?"
      data-testid="end-meeting-confirm-box"
    >
      <p className="small mb-2">
        End the meeting for everyone? Everyone here and everyone waiting will be sent out.
      </p>
      <div className="d-flex gap-2">
        <button
          type="button"
          className="btn btn-sm btn-danger"
          data-testid="end-meeting-confirm"
          onClick={onEnd}
        >
          End for everyone
        </button>
        <button
          ref={cancel}
          type="button"
          className="btn btn-sm btn-outline-light"
          data-testid="end-meeting-cancel"
          onClick={() => setAsking(false)}
        >
          Cancel
        </button>
      </div>
    </div>
  );
}
