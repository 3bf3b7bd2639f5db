import type { Ref } from "react";
import { Icon, type IconName } from "./Icon";
import "../styles/recording.css";

interface Props {
  title: string;
  /** Everyone in the room, this side included. */
  count: number;
  isPrivate: boolean;
  locked: boolean;
  protected: boolean;
  lobby: boolean;
  /** Someone in the room records it (a recorder is in the room). */
  recording?: boolean;
  /** The heading takes focus after joining, so keyboard and screen reader users start there. */
  headingRef?: Ref<HTMLHeadingElement>;
}

/** A protection of the room: an icon with its word (the word is read out only, on a phone). */
function Badge({ testId, icon, text, tone }: { testId: string; icon: IconName; text: string; tone: string }) {
  return (
    <span className={`badge room-badge ${tone}`} data-testid={testId} title={text}>
      <Icon name={icon} size={14} />
      <span className="room-badge-text">{text}</span>
    </span>
  );
}

/**
 * "● Recording" while a recorder is in the room. Its box is always in the page and is a
 * polite live region, so a screen reader hears it when recording starts, whoever started it
 * (a host's Record, or a recorder bot run by hand); the word stays visible on a phone too.
 */
function RecordingBadge({ recording, place }: { recording: boolean; place: string }) {
  return (
    <span className="room-recording" role="status" data-testid="recording-status">
      {recording && (
        <span
          className="badge room-badge recording-badge text-bg-danger"
          data-testid="badge-recording"
          title={`This ${place} is being recorded`}
        >
          <span className="recording-dot" aria-hidden="true" />
          <span aria-hidden="true">Recording</span>
          <span className="visually-hidden">Recording: this {place} is being recorded</span>
        </span>
      )}
    </span>
  );
}

/**
 * The room's one-line header: its title (cut short with an ellipsis, never wrapped), how many
 * are in, and its protections.
 */
export function RoomHeader({
  title,
  count,
  isPrivate,
  locked,
  protected: hasPassword,
  lobby,
  recording = false,
  headingRef,
}: Props) {
  const place = isPrivate ? "call" : "room";
  return (
    <header className="room-header">
      <h1 ref={headingRef} tabIndex={-1} className="room-title h6 m-0" title={title}>
        {title}
      </h1>
      <span className="member-count" data-testid="member-count" title={`${count} in the ${place}`}>
        <Icon name="people" size={16} />
        <span className="member-count-text">
          {count}
          <span className="member-count-words"> in the {place}</span>
        </span>
      </span>
      {!isPrivate && (locked || hasPassword || lobby) && (
        <span className="room-badges" data-testid="room-protections">
          {locked && <Badge testId="badge-locked" icon="lock" text="Locked" tone="text-bg-warning" />}
          {hasPassword && <Badge testId="badge-password" icon="key" text="Password" tone="text-bg-secondary" />}
          {lobby && <Badge testId="badge-lobby" icon="door" text="Ask to join" tone="text-bg-secondary" />}
        </span>
      )}
      <RecordingBadge recording={recording} place={place} />
    </header>
  );
}
