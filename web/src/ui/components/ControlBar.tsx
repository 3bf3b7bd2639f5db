import { Icon, type IconName } from "./Icon";

export type Panel = "chat" | "people" | "security" | "settings" | null;

interface Props {
  micOn: boolean;
  cameraOn: boolean;
  sharing: boolean;
  hasMic: boolean;
  hasCamera: boolean;
  canShare: boolean;
  panel: Panel;
  unread: number;
  leaveLabel: string;
  /** Rooms only (not direct calls): raise or lower your hand. */
  hand?: { raised: boolean; onToggle: () => void };
  /** Rooms only: the Security panel; `waiting` counts people in the lobby (hosts only). */
  security?: { waiting: number };
  onMic: () => void;
  onCamera: () => void;
  onScreen: () => void;
  onPanel: (panel: Panel) => void;
  onInvite?: () => void;
  onLeave: () => void;
}

/**
 * A round control. `pressed` is announced (aria-pressed) only for controls whose name stays
 * the same; the mic, camera and screen buttons instead change their name with their state.
 */
function Toggle(props: {
  label: string;
  testId: string;
  pressed: boolean;
  announcePressed?: boolean;
  icon: IconName;
  danger?: boolean;
  disabled?: boolean;
  onClick: () => void;
  children?: React.ReactNode;
}) {
  const {
    label,
    testId,
    pressed,
    announcePressed = false,
    icon,
    danger = false,
    disabled = false,
    onClick,
    children,
  } = props;
  return (
    <button
      type="button"
      className={`btn control ${danger ? "btn-danger" : pressed ? "btn-light" : "btn-secondary"}`}
      aria-label={label}
      aria-pressed={announcePressed ? pressed : undefined}
      title={label}
      disabled={disabled}
      data-testid={testId}
      onClick={onClick}
    >
      <Icon name={icon} />
      {children}
    </button>
  );
}

/** The bar under the room: mic, camera, screen, hand, invite, panels, leave. */
export function ControlBar(p: Props) {
  const panel = (which: Exclude<Panel, null>) => () => p.onPanel(p.panel === which ? null : which);
  return (
    <nav className="control-bar" aria-label="Call controls">
      <div className="controls-group">
        <Toggle
          label={!p.hasMic ? "No microphone available" : p.micOn ? "Mute microphone" : "Unmute microphone"}
          testId="control-mic"
          pressed={p.hasMic && !p.micOn}
          danger={!p.micOn && p.hasMic}
          disabled={!p.hasMic}
          icon={p.micOn ? "mic" : "micOff"}
          onClick={p.onMic}
        />
        <Toggle
          label={!p.hasCamera ? "No camera available" : p.cameraOn ? "Turn camera off" : "Turn camera on"}
          testId="control-camera"
          pressed={p.hasCamera && !p.cameraOn}
          danger={!p.cameraOn && p.hasCamera}
          disabled={!p.hasCamera}
          icon={p.cameraOn ? "camera" : "cameraOff"}
          onClick={p.onCamera}
        />
        <Toggle
          label={p.sharing ? "Stop sharing screen" : "Share screen"}
          testId="control-screen"
          pressed={p.sharing}
          disabled={!p.canShare}
          icon="screen"
          onClick={p.onScreen}
        />
        {p.hand && (
          <Toggle
            label={p.hand.raised ? "Lower hand" : "Raise hand"}
            testId="control-hand"
            pressed={p.hand.raised}
            icon="hand"
            onClick={p.hand.onToggle}
          />
        )}
        {p.onInvite && (
          <Toggle
            label="Copy invite link"
            testId="control-invite"
            pressed={false}
            icon="link"
            onClick={p.onInvite}
          />
        )}
      </div>
      <div className="controls-group">
        <Toggle
          label="Chat"
          testId="control-chat"
          pressed={p.panel === "chat"}
          announcePressed
          icon="chat"
          onClick={panel("chat")}
        >
          {p.unread > 0 && (
            <span className="badge rounded-pill text-bg-danger unread" data-testid="unread">
              {p.unread}
              <span className="visually-hidden"> unread messages</span>
            </span>
          )}
        </Toggle>
        <Toggle
          label="Participants"
          testId="control-people"
          pressed={p.panel === "people"}
          announcePressed
          icon="people"
          onClick={panel("people")}
        />
        {p.security && (
          <Toggle
            label={p.security.waiting > 0 ? `Security (${p.security.waiting} waiting to join)` : "Security"}
            testId="control-security"
            pressed={p.panel === "security"}
            announcePressed
            icon="shield"
            onClick={panel("security")}
          >
            {p.security.waiting > 0 && (
              <span
                className="badge rounded-pill text-bg-warning unread"
                data-testid="security-waiting-count"
              >
                {p.security.waiting}
              </span>
            )}
          </Toggle>
        )}
        <Toggle
          label="Devices"
          testId="control-devices"
          pressed={p.panel === "settings"}
          announcePressed
          icon="gear"
          onClick={panel("settings")}
        />
        <button
          type="button"
          className="btn btn-danger control leave"
          aria-label={p.leaveLabel}
          title={p.leaveLabel}
          data-testid="control-leave"
          onClick={p.onLeave}
        >
          <Icon name="phone" />
          <span className="d-none d-md-inline ms-1">{p.leaveLabel}</span>
        </button>
      </div>
    </nav>
  );
}
