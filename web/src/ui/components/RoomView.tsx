import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { LayoutChoice } from "../../room/layout";
import { canRetry, type LocalMedia } from "../../rtc/media";
import { recordControl } from "../../room/recording";
import type { RoomSession, RoomSnapshot } from "../../room/session";
import { useLocalMediaState } from "../hooks/media";
import { useArrivals } from "../hooks/arrivals";
import { useQuality } from "../hooks/quality";
import { useStuckConnections } from "../hooks/stuck";
import { useRoomShortcuts } from "../hooks/shortcuts";
import { useRoomSounds } from "../hooks/sounds";
import { useSpeakers } from "../hooks/speaker";
import { useStore } from "../hooks/store";
import { useUnread } from "../hooks/unread";
import { refocus } from "../focus";
import { ChatPanel } from "./ChatPanel";
import { ControlBar, type Panel } from "./ControlBar";
import { DevicePickers } from "./DevicePickers";
import { Icon } from "./Icon";
import { KnockNotices } from "./KnockNotices";
import { MediaNotice } from "./MediaNotice";
import { People } from "./People";
import { QualityIndicator } from "./QualityIndicator";
import { ReactionOverlay } from "./Reactions";
import { MediaServerBanner, ReconnectingBanner } from "./ReconnectingBanner";
import { RecordingsPanel } from "./RecordingsPanel";
import { RoomHeader } from "./RoomHeader";
import { RoomNotes } from "./RoomNotes";
import { SecurityPanel } from "./SecurityPanel";
import { SignedOutNotice } from "./SignedOutNotice";
import { LeaveConfirm, ShortcutHelp } from "./ShortcutHelp";
import { SoundSettings } from "./SoundSettings";
import { Stage } from "./Stage";
import { StatsPanel } from "./StatsPanel";

interface Props {
  session: RoomSession;
  media: LocalMedia;
  title: string;
  leaveLabel: string;
  inviteLink?: string;
  maxChatChars: number;
  onLeave: () => void;
  onRejoin?: () => void;
}

const PANEL_TITLES = {
  chat: "Chat",
  people: "Participants",
  security: "Security",
  recordings: "Recordings",
  settings: "Devices",
  stats: "Statistics",
} as const;
const canShare = typeof navigator !== "undefined" && navigator.mediaDevices?.getDisplayMedia !== undefined;
/** How long "Invite link copied" stays (ms). */
export const INVITE_NOTICE_MS = 4_000;

/** A room in progress: the stage, the side panel and the controls. */
export function RoomView({
  session,
  media,
  title,
  leaveLabel,
  inviteLink,
  maxChatChars,
  onLeave,
  onRejoin,
}: Props) {
  const snap = useStore(session);
  const local = useLocalMediaState(media);
  const [layout, setLayout] = useState<LayoutChoice>("auto");
  const [chatDraft, setChatDraft] = useState("");
  const [notice, setNotice] = useState<{ text: string; fades: boolean } | null>(null);
  /** Knock notices a host closed without answering (the person still waits in the panel). */
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const joined = snap.phase === "joined";
  const arrival = useArrivals(snap.members, joined);
  useEffect(() => {
    // The tab says which meeting or call this is; document.title is text, never markup.
    const before = document.title;
    document.title = `${title} · Salon`;
    return () => {
      document.title = before;
    };
  }, [title]);
  const { panel: opened, openPanel, closePanel, togglePanel, panelRef } = usePanel();
  // Direct calls have no hosts, hands or protections (docs/PROTOCOL.md, hosts).
  const isRoom = !snap.isPrivate;
  const canRecord = isRoom && snap.isHost && !snap.lost;
  // The Recordings panel is a host's: it goes when this side stops being one.
  const panel = opened === "recordings" && !canRecord ? null : opened;
  const unread = useUnread(snap.chat, panel === "chat", snap.selfId);
  const level = useCallback((id: string) => session.audioLevel(id), [session]);
  const talking = useCallback(() => session.talking, [session]);
  const listened = useMemo(() => snap.members.map((m) => ({ id: m.id, mic: m.media.mic })), [snap.members]);
  const speakers = useSpeakers(level, talking, listened, snap.selfId, local.micOn ? local.audio : null);
  const videoShown = useCallback(
    (id: string, width: number | null) => session.showVideo(id, width),
    [session],
  );
  const self = {
    mic: local.micOn && local.audio !== null,
    camera: local.cameraOn && local.video !== null,
    screen: local.screen !== null,
  };
  const hostActions = session.host;
  const labels = useMemo(() => new Map(snap.members.map((m) => [m.id, m.label])), [snap.members]);
  // A recorder is not a person: no tile and no head in the count; the badge says it is there.
  const people = useMemo(() => snap.members.filter((m) => !m.recorder), [snap.members]);
  const record = recordControl(snap.recordings, snap.recordPending);
  const ownScreen = useMemo(
    () => (local.screen === null ? null : new MediaStream([local.screen])),
    [local.screen],
  );

  // After joining, keyboard and screen reader users start at the room's heading.
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (joined) heading.current?.focus();
  }, [joined]);

  // "Invite link copied" goes by itself; the link shown for copying by hand stays until closed.
  useEffect(() => {
    if (!notice?.fades) return;
    const timer = setTimeout(() => setNotice(null), INVITE_NOTICE_MS);
    return () => clearTimeout(timer);
  }, [notice]);

  const invite = () => {
    if (!inviteLink) return;
    const fallback = () => setNotice({ text: `Invite link: ${inviteLink}`, fades: false });
    if (navigator.clipboard === undefined) {
      fallback();
      return;
    }
    navigator.clipboard
      .writeText(inviteLink)
      .then(
        () => setNotice({ text: "Invite link copied. Send it to the people you want to meet.", fades: true }),
        fallback,
      );
  };

  const quality = useQuality(session);
  const stuck = useStuckConnections(session, snap.members, snap.sfu !== "off");
  useRoomSounds(snap, unread);
  // A device that was blocked or missing is asked for again rather than left disabled.
  const retry = (kind: "audio" | "video", control: string) =>
    void media.retry(kind).then(() => refocus(`[data-testid="${control}"]`));
  const toggleMic = () =>
    local.audio === null ? retry("audio", "control-mic") : media.setMicOn(!local.micOn);
  const toggleCamera = () =>
    local.video === null ? retry("video", "control-camera") : media.setCameraOn(!local.cameraOn);
  const toggleScreen = () => (local.screen ? media.stopScreen() : void media.startScreen());
  const toggleHand = () => session.raiseHand(snap.selfHand === null);
  const keys = useRoomShortcuts({
    mic: toggleMic,
    camera: toggleCamera,
    chat: () => togglePanel("chat"),
    people: () => togglePanel("people"),
    ...(isRoom ? { hand: toggleHand } : {}),
    ...(canShare && !snap.lost ? { screen: toggleScreen } : {}),
    leave: onLeave,
  });

  return (
    <div className="room" data-testid="room">
      <RoomHeader
        title={title}
        count={people.length + 1}
        isPrivate={snap.isPrivate}
        locked={snap.locked}
        protected={snap.protected}
        lobby={snap.lobby}
        recording={snap.recording}
        headingRef={heading}
      />
      {snap.reconnecting && !snap.lost && <ReconnectingBanner />}
      {!snap.lost && <MediaServerBanner state={snap.sfu} />}
      {snap.lost && snap.lostReason === "signed_out" && (
        <SignedOutNotice
          consequence={`You are no longer in the ${snap.isPrivate ? "call" : "meeting"}.`}
          className="m-2"
          {...(onRejoin ? { onAsGuest: onRejoin } : {})}
        />
      )}
      {snap.lost && snap.lostReason !== "signed_out" && (
        <div
          className="alert alert-danger m-2 d-flex align-items-center gap-2"
          role="alert"
          data-testid="lost"
          data-reason={snap.lostReason ?? "lost"}
        >
          <span className="flex-grow-1">{lostMessage(snap)}</span>
          {onRejoin && (
            <button
              type="button"
              className="btn btn-light btn-sm"
              data-testid="lost-rejoin"
              onClick={onRejoin}
            >
              {snap.lostReason === "replaced" ? "Use here" : "Rejoin"}
            </button>
          )}
        </div>
      )}
      {snap.problem && snap.phase === "joined" && !snap.lost && (
        <div
          className="alert alert-warning alert-dismissible m-2 py-2"
          role="alert"
          data-testid="room-problem"
        >
          {snap.problem.message}
          <button
            type="button"
            className="btn-close"
            aria-label="Dismiss"
            data-testid="room-problem-dismiss"
            onClick={() => session.clearProblem()}
          />
        </div>
      )}
      {stuck.text && snap.phase === "joined" && !snap.lost && (
        <div className="alert alert-warning m-2 py-2" role="status" data-testid="media-stuck">
          {stuck.text}
        </div>
      )}
      {isRoom && snap.isHost && panel !== "security" && (
        <KnockNotices
          waiting={snap.waiting}
          dismissed={dismissed}
          onAdmit={hostActions.admit}
          onDeny={hostActions.deny}
          onDismiss={(id) => setDismissed((before) => new Set([...before, id]))}
          onOpenPanel={() => openPanel("security")}
        />
      )}
      <RoomNotes notes={snap.notes} />
      <div className="room-body">
        <div className="stage-area">
          <Stage
            self={{
              id: snap.selfId,
              name: snap.selfName,
              label: snap.selfLabel,
              host: snap.isHost,
              hand: snap.selfHand,
              media: self,
              camera: local.preview,
              screen: ownScreen,
            }}
            members={people}
            speakers={speakers}
            choice={layout}
            sinkId={local.speakerId}
            indicator={(id) => <QualityIndicator quality={quality.get(id)} />}
            overlay={<ReactionOverlay reactions={snap.reactions} labels={labels} selfId={snap.selfId} />}
            stuck={stuck.ids}
            onVideoShown={videoShown}
          />
          <div className="room-toasts">
            {notice && (
              <div className="room-toast" role="status" data-testid="notice">
                <span className="flex-grow-1">{notice.text}</span>
                <button
                  type="button"
                  className="btn-close btn-close-white"
                  aria-label="Dismiss"
                  data-testid="notice-dismiss"
                  onClick={() => setNotice(null)}
                />
              </div>
            )}
            {/* Always in the page, so screen readers hear what is put in it. */}
            <div className="arrivals" role="status" data-testid="arrivals">
              {arrival.text && (
                <span key={arrival.key} className="room-toast arrival">
                  {arrival.text}
                </span>
              )}
            </div>
          </div>
        </div>
        {panel && (
          <aside ref={panelRef} className="side-panel" aria-label={PANEL_TITLES[panel]}>
            <div className="side-head">
              <h2 className="h6 m-0" tabIndex={-1} data-panel-heading="">
                {PANEL_TITLES[panel]}
              </h2>
              <button
                type="button"
                className="btn btn-sm btn-link text-body"
                aria-label={`Close ${PANEL_TITLES[panel]}`}
                data-testid="panel-close"
                onClick={closePanel}
              >
                <Icon name="close" size={18} />
              </button>
            </div>
            {panel === "chat" && (
              <ChatPanel
                chat={snap.chat}
                unsent={snap.unsent}
                selfId={snap.selfId}
                labels={labels}
                maxChars={maxChatChars}
                onSend={(t) => session.sendChat(t)}
                draft={chatDraft}
                onDraft={setChatDraft}
              />
            )}
            {panel === "people" && (
              <People
                self={{
                  id: snap.selfId,
                  name: snap.selfName,
                  label: snap.selfLabel,
                  media: self,
                  host: snap.isHost,
                  hand: snap.selfHand,
                }}
                members={snap.members}
                actions={isRoom && snap.isHost ? hostActions : null}
              />
            )}
            {panel === "security" && (
              <SecurityPanel
                isHost={snap.isHost}
                locked={snap.locked}
                lobby={snap.lobby}
                protected={snap.protected}
                waiting={snap.waiting}
                actions={hostActions}
              />
            )}
            {panel === "recordings" && (
              <RecordingsPanel
                recordings={snap.recordings}
                pending={snap.recordPending}
                recording={snap.recording}
                onRecord={(on) => session.record(on)}
              />
            )}
            {panel === "settings" && (
              <div className="side-scroll p-3">
                <MediaNotice state={local} onRetry={() => void media.retry()} />
                <DevicePickers
                  state={local}
                  onCamera={(id) => void media.useCamera(id)}
                  onMic={(id) => void media.useMic(id)}
                  onSpeaker={(id) => media.useSpeaker(id)}
                  onProcessing={(change) => void media.setProcessing(change)}
                />
                <SoundSettings />
              </div>
            )}
            {panel === "stats" && <StatsPanel session={session} labels={labels} />}
          </aside>
        )}
      </div>
      <ControlBar
        micOn={self.mic}
        cameraOn={self.camera}
        sharing={self.screen}
        hasMic={local.audio !== null || canRetry(local, "audio")}
        hasCamera={local.video !== null || canRetry(local, "video")}
        canShare={canShare && !snap.lost}
        panel={panel}
        unread={unread}
        leaveLabel={leaveLabel}
        {...(isRoom
          ? {
              hand: { raised: snap.selfHand !== null, onToggle: toggleHand },
              security: { waiting: snap.isHost ? snap.waiting.length : 0 },
            }
          : {})}
        {...(canRecord
          ? {
              record: {
                label: record.label,
                running: record.running,
                busy: record.busy,
                onToggle: () => session.record(record.turnOn),
              },
            }
          : {})}
        layout={{ choice: layout, onChoose: setLayout }}
        onMic={toggleMic}
        onCamera={toggleCamera}
        onScreen={toggleScreen}
        onPanel={(which) => (which === null ? closePanel() : openPanel(which))}
        onStats={() => togglePanel("stats")}
        onReact={(r) => session.react(r)}
        onHelp={keys.openHelp}
        {...(inviteLink ? { onInvite: invite } : {})}
        onLeave={onLeave}
      />
      <ShortcutHelp open={keys.helpOpen} onClose={keys.closeHelp} />
      <LeaveConfirm open={keys.leaveAsked} onLeave={keys.confirmLeave} onStay={keys.cancelLeave} />
    </div>
  );
}

/**
 * The side panel that is open, and where focus goes: opening one remembers what had focus
 * (the button that opened it) and moves focus into the panel unless the panel took it itself
 * (the chat box does); closing it — by its button, its control or Escape — gives focus back.
 */
function usePanel() {
  const [panel, setPanel] = useState<Panel>(null);
  const opener = useRef<HTMLElement | null>(null);
  const panelRef = useRef<HTMLElement>(null);
  const moveFocus = useRef<"in" | "back" | null>(null);

  const openPanel = useCallback(
    (which: Exclude<Panel, null>) => {
      if (panel === null) {
        const active = document.activeElement;
        opener.current = active instanceof HTMLElement && active !== document.body ? active : null;
      }
      setPanel(which);
      moveFocus.current = "in";
    },
    [panel],
  );
  const closePanel = useCallback(() => {
    setPanel(null);
    moveFocus.current = "back";
  }, []);
  const togglePanel = useCallback(
    (which: Exclude<Panel, null>) => (panel === which ? closePanel() : openPanel(which)),
    [panel, openPanel, closePanel],
  );

  useEffect(() => {
    const move = moveFocus.current;
    moveFocus.current = null;
    if (move === "in" && panel !== null) {
      const box = panelRef.current;
      if (box !== null && !box.contains(document.activeElement)) {
        box.querySelector<HTMLElement>("[data-panel-heading]")?.focus();
      }
    } else if (move === "back" && panel === null) {
      const back = opener.current;
      opener.current = null;
      // The opener may be gone (an item of the "More" menu): "More" itself then takes focus.
      const target = back?.isConnected
        ? back
        : document.querySelector<HTMLElement>('[data-testid="control-more"]');
      target?.focus();
    }
  }, [panel]);

  // Escape closes the panel, unless something inside already handled it (a menu, a dialog).
  useEffect(() => {
    if (panel === null) return;
    const onKey = (event: KeyboardEvent) => {
      if (event.key !== "Escape" || event.defaultPrevented) return;
      if (document.querySelector("dialog[open], [aria-modal='true']") !== null) return;
      event.preventDefault();
      closePanel();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [panel, closePanel]);

  return { panel, openPanel, closePanel, togglePanel, panelRef };
}

/** Why this side is out of the room, in a sentence. */
function lostMessage(snap: RoomSnapshot): string {
  const place = snap.isPrivate ? "call" : "meeting";
  switch (snap.lostReason) {
    case "replaced":
      return `This ${place} was opened in another tab or window, so it was closed here.`;
    case "rejoin_failed":
      return `Connection to the server was lost, and joining the ${place} again failed${snap.problem ? `: ${snap.problem.message}` : "."}`;
    default:
      return `Connection to the server was lost. You are no longer in the ${place === "call" ? "call" : "room"}.`;
  }
}
