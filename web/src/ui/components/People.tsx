import { useEffect, useRef, useState } from "react";
import type { HostActions } from "../../room/hostActions";
import { handsFirst } from "../../room/names";
import type { Participant } from "../../room/session";
import { ordinal } from "../words";
import { Avatar } from "./Avatar";
import { SignedInMark } from "./SignedInMark";
import { Icon } from "./Icon";
import { MenuButton, type MenuItem } from "./MenuButton";
import "../styles/recording.css";

/** What a host can do to another member (src/room/hostActions.ts). */
export type MemberActions = Pick<HostActions, "makeHost" | "mute" | "lowerHand" | "remove">;

export interface Person {
  id: string;
  name: string;
  label: string;
  media: Participant["media"];
  /** Signed in to an account (the others see it; your own row does not say). */
  signedIn?: boolean;
  host: boolean;
  hand: number | null;
  self: boolean;
  /** Its media says it records the room: a Recording badge beside its name. */
  recording?: boolean;
  /** The server's recorder, not a person: no mic or camera icons (they are always off). */
  recorder?: boolean;
}

interface Props {
  self: Omit<Person, "self">;
  members: readonly Participant[];
  /** Present for hosts: the per-person menu. */
  actions: MemberActions | null;
}

/**
 * Everyone in the room: raised hands first in the order they went up ("1st", "2nd", …), then
 * you, then the others in the order they came. Hosts get a menu per person.
 */
export function People({ self, members, actions }: Props) {
  const [confirming, setConfirming] = useState<string | null>(null);
  const rows = handsFirst([
    { ...self, self: true },
    ...members.map((m) => ({
      id: m.id,
      name: m.name,
      label: m.label,
      media: m.media,
      signedIn: m.signedIn,
      host: m.host,
      hand: m.hand,
      self: false,
      recording: m.recording,
      recorder: m.recorder,
    })),
  ]);
  const target = rows.find((p) => p.id === confirming && !p.self) ?? null;
  return (
    <ul className="list-unstyled people" aria-label="Participants" data-testid="people">
      {rows.map((p) => (
        <li
          key={p.id}
          className="people-item"
          data-testid="person"
          data-member={p.name}
          data-label={p.label}
          data-self={p.self ? "true" : "false"}
          data-host={p.host ? "true" : "false"}
          data-hand={p.hand ?? ""}
          data-recording={p.recording ? "true" : "false"}
        >
          <div className="people-row">
            {p.recorder ? (
              <span className="avatar avatar-sm recorder-avatar" aria-hidden="true">
                <Icon name="record" size={18} />
              </span>
            ) : (
              <Avatar name={p.name} size="sm" />
            )}
            <span className="flex-grow-1 text-truncate" data-testid="person-name">
              {p.self ? `${p.label} (you)` : p.label}
            </span>
            {p.signedIn === true && <SignedInMark testId="person-signed-in" />}
            {p.hand !== null && (
              <span
                className="hand-badge"
                data-testid="person-hand"
                title={`Hand raised (${ordinal(p.hand)})`}
              >
                <Icon name="hand" size={16} />
                <span className="visually-hidden">Hand raised: </span>
                <span data-testid="person-hand-place">{ordinal(p.hand)}</span>
              </span>
            )}
            {p.host && (
              <span className="badge text-bg-secondary role-badge" data-testid="person-host">
                Host
              </span>
            )}
            {p.recording === true && (
              <span className="badge text-bg-danger role-badge" data-testid="person-recording">
                Recording
              </span>
            )}
            {p.recorder !== true && <MediaIcons media={p.media} />}
            {actions !== null && !p.self && (
              <MenuButton
                label={`Actions for ${p.label}`}
                testId="person-menu"
                items={menuItems(p, actions, () => setConfirming(p.id))}
              >
                <Icon name="more" size={18} />
              </MenuButton>
            )}
          </div>
          {actions !== null && target?.id === p.id && (
            <ConfirmRemove
              label={p.label}
              onConfirm={() => {
                setConfirming(null);
                actions.remove(p.id);
              }}
              onCancel={() => setConfirming(null)}
            />
          )}
        </li>
      ))}
    </ul>
  );
}

function menuItems(p: Person, actions: MemberActions, confirmRemove: () => void): MenuItem[] {
  const items: MenuItem[] = [];
  // The server's recorder can never be a host (docs/PROTOCOL.md §3.9); removing it stops it.
  if (!p.host && !p.recorder)
    items.push({
      key: "host",
      label: "Make host",
      testId: "person-make-host",
      onSelect: () => actions.makeHost(p.id),
    });
  if (p.media.mic)
    items.push({
      key: "mic",
      label: "Mute microphone",
      testId: "person-mute",
      onSelect: () => actions.mute(p.id, "mic"),
    });
  if (p.media.camera)
    items.push({
      key: "camera",
      label: "Stop camera",
      testId: "person-stop-camera",
      onSelect: () => actions.mute(p.id, "camera"),
    });
  if (p.hand !== null)
    items.push({
      key: "hand",
      label: "Lower hand",
      testId: "person-lower-hand",
      onSelect: () => actions.lowerHand(p.id),
    });
  items.push({
    key: "remove",
    label: "Remove…",
    testId: "person-remove",
    danger: true,
    onSelect: confirmRemove,
  });
  return items;
}

function ConfirmRemove({
  label,
  onConfirm,
  onCancel,
}: {
  label: string;
  onConfirm: () => void;
  onCancel: () => void;
}) {
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => cancel.current?.focus(), []);
  return (
    <div className="confirm-box" role="group" aria-label={`Remove ${label}?`} data-testid="confirm-remove">
      <p className="small mb-2">
        Remove {label} from the meeting? They can come back only if a host lets them in.
      </p>
      <div className="d-flex gap-2">
        <button
          type="button"
          className="btn btn-sm btn-danger"
          data-testid="confirm-remove-yes"
          onClick={onConfirm}
        >
          Remove
        </button>
        <button
          ref={cancel}
          type="button"
          className="btn btn-sm btn-outline-light"
          data-testid="confirm-remove-no"
          onClick={onCancel}
        >
          Cancel
        </button>
      </div>
    </div>
  );
}

function MediaIcons({ media }: { media: Participant["media"] }) {
  return (
    <>
      <MediaIcon on={media.mic} kind="mic" />
      <MediaIcon on={media.camera} kind="camera" />
    </>
  );
}

const MEDIA = {
  mic: { on: "mic", off: "micOff", onText: "Microphone on", offText: "Microphone muted" },
  camera: { on: "camera", off: "cameraOff", onText: "Camera on", offText: "Camera off" },
} as const;

function MediaIcon({ on, kind }: { on: boolean; kind: keyof typeof MEDIA }) {
  const words = MEDIA[kind];
  const text = on ? words.onText : words.offText;
  return (
    <span
      className={on ? "text-body-secondary" : "text-danger"}
      title={text}
      data-testid={kind === "mic" ? "person-mic" : "person-camera"}
      data-state={on ? "on" : "off"}
    >
      <Icon name={on ? words.on : words.off} size={16} />
      <span className="visually-hidden">{text.toLowerCase()}</span>
    </span>
  );
}
