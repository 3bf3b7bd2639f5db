import { Fragment, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import type { Reaction } from "../../protocol";
import { controlsInBar, NARROW_BAR, type LayoutChoice } from "../../room/layout";
import { REACTION_NAMES, REACTIONS } from "../../room/reactions";
import { ControlMenu, type ControlMenuGroup, type ControlMenuItem } from "./ControlMenu";
import { Icon, type IconName } from "./Icon";

export type Panel = "chat" | "people" | "security" | "recordings" | "settings" | "stats" | null;

const LAYOUTS: readonly { choice: LayoutChoice; label: string }[] = [
  { choice: "auto", label: "Automatic" },
  { choice: "grid", label: "Grid" },
  { choice: "speaker", label: "Speaker" },
];

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
  /** Hosts in rooms only: start or stop the room's recorder, and the Recordings panel. */
  record?: { label: string; running: boolean; busy: boolean; onToggle: () => void };
  /** The layout menu: what is chosen, and choosing. */
  layout?: { choice: LayoutChoice; onChoose: (choice: LayoutChoice) => void };
  onMic: () => void;
  onCamera: () => void;
  onScreen: () => void;
  onPanel: (panel: Panel) => void;
  onInvite?: () => void;
  /** Send a reaction (a "Reactions" menu). */
  onReact?: (reaction: Reaction) => void;
  /** Open or close the statistics panel. */
  onStats?: () => void;
  /** Show the keyboard shortcuts. */
  onHelp?: () => void;
  onLeave: () => void;
}

/** A control: drawn as a round button in the bar, or as items of the "More" menu. */
interface Control {
  id: string;
  /** Stays in the bar at any width. */
  essential?: boolean;
  /** Which side of the bar it sits on. */
  side: "start" | "end";
  bar: ReactNode;
  more: ControlMenuGroup | ControlMenuItem | null;
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
  icon: ReactNode;
  danger?: boolean;
  disabled?: boolean;
  onClick: () => void;
  children?: ReactNode;
}) {
  const { label, testId, pressed, announcePressed = false, icon, danger = false, disabled = false, onClick, children } = props;
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
      {icon}
      {children}
    </button>
  );
}

const icon = (name: IconName) => <Icon name={name} />;
const item = (key: string, label: string, testId: string, glyph: ReactNode, onSelect: () => void): ControlMenuItem => ({
  key,
  label,
  testId,
  glyph,
  onSelect,
});

/** The controls in the order they give way to "More" (the essential ones first). */
function controls(p: Props): Control[] {
  const togglePanel = (which: Exclude<Panel, null>) => () => p.onPanel(p.panel === which ? null : which);
  const micLabel = !p.hasMic ? "No microphone available" : p.micOn ? "Mute microphone" : "Unmute microphone";
  const cameraLabel = !p.hasCamera ? "No camera available" : p.cameraOn ? "Turn camera off" : "Turn camera on";
  const screenLabel = p.sharing ? "Stop sharing screen" : "Share screen";
  const waiting = p.security?.waiting ?? 0;
  const securityLabel = waiting > 0 ? `Security, ${waiting} waiting to join` : "Security";
  const list: (Control | false | undefined)[] = [
    {
      id: "mic",
      essential: true,
      side: "start",
      more: null,
      bar: (
        <Toggle
          label={micLabel}
          testId="control-mic"
          pressed={p.hasMic && !p.micOn}
          danger={!p.micOn && p.hasMic}
          disabled={!p.hasMic}
          icon={icon(p.micOn ? "mic" : "micOff")}
          onClick={p.onMic}
        />
      ),
    },
    {
      id: "camera",
      essential: true,
      side: "start",
      more: null,
      bar: (
        <Toggle
          label={cameraLabel}
          testId="control-camera"
          pressed={p.hasCamera && !p.cameraOn}
          danger={!p.cameraOn && p.hasCamera}
          disabled={!p.hasCamera}
          icon={icon(p.cameraOn ? "camera" : "cameraOff")}
          onClick={p.onCamera}
        />
      ),
    },
    p.hand && {
      id: "hand",
      essential: true,
      side: "start",
      more: null,
      bar: (
        <Toggle
          label={p.hand.raised ? "Lower hand" : "Raise hand"}
          testId="control-hand"
          pressed={p.hand.raised}
          icon={icon("hand")}
          onClick={p.hand.onToggle}
        />
      ),
    },
    p.record && {
      id: "record",
      side: "start",
      more: p.record.busy ? null : item("record", p.record.label, "control-record", icon(p.record.running ? "stop" : "record"), p.record.onToggle),
      bar: (
        <Toggle
          label={p.record.label}
          testId="control-record"
          pressed={p.record.running}
          danger={p.record.running}
          disabled={p.record.busy}
          icon={icon(p.record.running ? "stop" : "record")}
          onClick={p.record.onToggle}
        />
      ),
    },
    {
      id: "chat",
      side: "end",
      more: item("chat", p.unread > 0 ? `Chat, ${p.unread} unread` : "Chat", "control-chat", icon("chat"), togglePanel("chat")),
      bar: (
        <Toggle label={p.unread > 0 ? `Chat, ${p.unread} unread` : "Chat"} testId="control-chat" pressed={p.panel === "chat"} announcePressed icon={icon("chat")} onClick={togglePanel("chat")}>
          {p.unread > 0 && <UnreadBadge count={p.unread} />}
        </Toggle>
      ),
    },
    {
      id: "people",
      side: "end",
      more: item("people", "Participants", "control-people", icon("people"), togglePanel("people")),
      bar: (
        <Toggle
          label="Participants"
          testId="control-people"
          pressed={p.panel === "people"}
          announcePressed
          icon={icon("people")}
          onClick={togglePanel("people")}
        />
      ),
    },
    {
      id: "screen",
      side: "start",
      // A phone browser cannot share its screen: the item is left out rather than shown dead.
      more: p.canShare ? item("screen", screenLabel, "control-screen", icon("screen"), p.onScreen) : null,
      bar: (
        <Toggle label={screenLabel} testId="control-screen" pressed={p.sharing} disabled={!p.canShare} icon={icon("screen")} onClick={p.onScreen} />
      ),
    },
    p.onReact && {
      id: "react",
      side: "start",
      more: reactionGroup(p.onReact),
      bar: <ControlMenu label="Reactions" testId="control-react" icon={icon("smile")} align="start" groups={[reactionGroup(p.onReact)]} />,
    },
    p.security && {
      id: "security",
      side: "end",
      more: item("security", securityLabel, "control-security", icon("shield"), togglePanel("security")),
      bar: (
        <Toggle
          label={securityLabel}
          testId="control-security"
          pressed={p.panel === "security"}
          announcePressed
          icon={icon("shield")}
          onClick={togglePanel("security")}
        >
          {waiting > 0 && (
            <span className="badge rounded-pill text-bg-warning unread" data-testid="security-waiting-count">
              {waiting}
            </span>
          )}
        </Toggle>
      ),
    },
    p.record && {
      id: "recordings",
      side: "end",
      more: item("recordings", "Recordings", "control-recordings", icon("film"), togglePanel("recordings")),
      bar: (
        <Toggle
          label="Recordings"
          testId="control-recordings"
          pressed={p.panel === "recordings"}
          announcePressed
          icon={icon("film")}
          onClick={togglePanel("recordings")}
        />
      ),
    },
    p.onInvite && {
      id: "invite",
      side: "start",
      more: item("invite", "Copy invite link", "control-invite", icon("link"), p.onInvite),
      bar: <Toggle label="Copy invite link" testId="control-invite" pressed={false} icon={icon("link")} onClick={p.onInvite} />,
    },
    p.layout && {
      id: "layout",
      side: "end",
      more: layoutGroup(p.layout),
      bar: <ControlMenu label="Layout" testId="control-layout" icon={icon("layout")} groups={[layoutGroup(p.layout)]} />,
    },
    {
      id: "devices",
      side: "end",
      more: item("devices", "Devices", "control-devices", icon("gear"), togglePanel("settings")),
      bar: (
        <Toggle
          label="Devices"
          testId="control-devices"
          pressed={p.panel === "settings"}
          announcePressed
          icon={icon("gear")}
          onClick={togglePanel("settings")}
        />
      ),
    },
    p.onStats && {
      id: "stats",
      side: "end",
      more: item("stats", "Statistics", "control-stats", icon("stats"), p.onStats),
      bar: (
        <Toggle label="Statistics" testId="control-stats" pressed={p.panel === "stats"} announcePressed icon={icon("stats")} onClick={p.onStats} />
      ),
    },
    p.onHelp && {
      id: "help",
      side: "end",
      more: item("help", "Keyboard shortcuts", "control-help", icon("help"), p.onHelp),
      bar: <Toggle label="Keyboard shortcuts" testId="control-help" pressed={false} icon={icon("help")} onClick={p.onHelp} />,
    },
  ];
  return list.filter((c): c is Control => Boolean(c));
}

function reactionGroup(onReact: (reaction: Reaction) => void): ControlMenuGroup {
  return {
    key: "reactions",
    label: "Reactions",
    row: true,
    items: REACTION_NAMES.map((reaction) => ({
      key: reaction,
      label: REACTIONS[reaction].label,
      ariaLabel: REACTIONS[reaction].label,
      testId: `react-${reaction}`,
      glyph: REACTIONS[reaction].emoji,
      onSelect: () => onReact(reaction),
    })),
  };
}

function layoutGroup(layout: NonNullable<Props["layout"]>): ControlMenuGroup {
  return {
    key: "layout",
    label: "Layout",
    items: LAYOUTS.map((l) => ({
      key: l.choice,
      label: l.label,
      testId: `layout-${l.choice}`,
      checked: layout.choice === l.choice,
      onSelect: () => layout.onChoose(l.choice),
    })),
  };
}

/** The count on the button; the button's own name says it ("Chat (2 unread)"). */
function UnreadBadge({ count }: { count: number }) {
  return (
    <span className="badge rounded-pill text-bg-danger unread" data-testid="unread" aria-hidden="true">
      {count}
    </span>
  );
}

/** The bar's width, measured, for deciding what fits in one row. */
function useWidth(): [React.RefObject<HTMLElement | null>, number] {
  const ref = useRef<HTMLElement>(null);
  const [width, setWidth] = useState(() => (typeof window === "undefined" ? 1024 : window.innerWidth));
  useLayoutEffect(() => {
    const element = ref.current;
    if (element === null) return;
    const style = getComputedStyle(element);
    const measure = () =>
      setWidth(element.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight));
    measure();
    if (typeof ResizeObserver === "undefined") return;
    const observer = new ResizeObserver(measure);
    observer.observe(element);
    return () => observer.disconnect();
  }, []);
  return [ref, width];
}

/**
 * The bar under the room, always one row: mic, camera, hand and leave stay; the other
 * controls stay while they fit, and the rest go into "More" (at 600 px and below, all of them).
 */
export function ControlBar(p: Props) {
  const [ref, width] = useWidth();
  const all = controls(p);
  const essential = all.filter((c) => c.essential).length;
  // Leave counts as one control, two with its text (shown only when everything fits);
  // "More" reserves its own slot in controlsInBar.
  const roomy = controlsInBar(all.length + 2, essential + 2, width) === all.length + 2;
  const fits = roomy ? all.length : controlsInBar(all.length + 1, essential + 1, width) - 1;
  const inBar = new Set(all.slice(0, fits).map((c) => c.id));
  const overflow = all.slice(fits).flatMap((c) => (c.more === null ? [] : [c.more]));
  const chatInMore = !inBar.has("chat") && p.unread > 0;
  const groups = moreGroups(overflow);
  const side = (which: Control["side"]) => all.filter((c) => c.side === which && inBar.has(c.id));

  return (
    <nav ref={ref} className={`control-bar ${width <= NARROW_BAR ? "narrow" : ""}`} aria-label="Call controls">
      <div className="controls-group">
        {side("start").map((c) => (
          <Fragment key={c.id}>{c.bar}</Fragment>
        ))}
      </div>
      <div className="controls-group">
        {side("end").map((c) => (
          <Fragment key={c.id}>{c.bar}</Fragment>
        ))}
        {groups.length > 0 && (
          <ControlMenu
            label={chatInMore ? `More options, ${p.unread} unread` : "More options"}
            testId="control-more"
            icon={<Icon name="more" />}
            groups={groups}
            badge={chatInMore ? <UnreadBadge count={p.unread} /> : undefined}
          />
        )}
        <button
          type="button"
          className="btn btn-danger control leave"
          aria-label={p.leaveLabel}
          title={p.leaveLabel}
          data-testid="control-leave"
          onClick={p.onLeave}
        >
          <Icon name="phone" />
          {roomy && <span className="leave-text ms-1">{p.leaveLabel}</span>}
        </button>
      </div>
    </nav>
  );
}

/** The overflowing controls as menu groups: plain items together, each sub-menu a group. */
function moreGroups(overflow: readonly (ControlMenuGroup | ControlMenuItem)[]): ControlMenuGroup[] {
  const plain = overflow.filter((o): o is ControlMenuItem => !("items" in o));
  const groups = overflow.filter((o): o is ControlMenuGroup => "items" in o);
  const reactions = groups.filter((g) => g.key === "reactions");
  const rest = groups.filter((g) => g.key !== "reactions");
  return [...reactions, ...(plain.length > 0 ? [{ key: "actions", items: plain }] : []), ...rest];
}
