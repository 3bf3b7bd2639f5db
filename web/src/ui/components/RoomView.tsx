import { useCallback, useEffect, useMemo, useState } from "react";
import type { LocalMedia } from "../../rtc/media";
import type { RoomSession, RoomSnapshot } from "../../room/session";
import { useLocalMediaState, useTrackLevel } from "../hooks/media";
import { useArrivals } from "../hooks/arrivals";
import { useStore } from "../hooks/store";
import { useUnread } from "../hooks/unread";
import { ChatPanel } from "./ChatPanel";
import { ControlBar, type Panel } from "./ControlBar";
import { DevicePickers } from "./DevicePickers";
import { Grid } from "./Grid";
import { Icon } from "./Icon";
import { KnockNotices } from "./KnockNotices";
import { People } from "./People";
import { ReconnectingBanner } from "./ReconnectingBanner";
import { RemoteTile } from "./RemoteTile";
import { RoomNotes } from "./RoomNotes";
import { SecurityPanel } from "./SecurityPanel";
import { Tile } from "./Tile";

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
  settings: "Devices",
} as const;
const canShare = typeof navigator !== "undefined" && navigator.mediaDevices?.getDisplayMedia !== undefined;

/** A room in progress: the grid, the side panel and the controls. */
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
  const [panel, setPanel] = useState<Panel>(null);
  const [notice, setNotice] = useState<string | null>(null);
  /** Knock notices a host closed without answering (the person still waits in the panel). */
  const [dismissed, setDismissed] = useState<ReadonlySet<string>>(new Set());
  const arrivals = useArrivals(snap.members);
  useEffect(() => {
    // The tab says which meeting or call this is; document.title is text, never markup.
    const before = document.title;
    document.title = `${title} · Salon`;
    return () => {
      document.title = before;
    };
  }, [title]);
  const unread = useUnread(snap.chat, panel === "chat", snap.selfId);
  const ownLevel = useTrackLevel(local.micOn ? local.audio : null);
  const level = useCallback((id: string) => session.audioLevel(id), [session]);
  const self = {
    mic: local.micOn && local.audio !== null,
    camera: local.cameraOn && local.video !== null,
    screen: local.screen !== null,
  };
  const hostActions = session.host;
  const labels = useMemo(() => new Map(snap.members.map((m) => [m.id, m.label])), [snap.members]);
  // Direct calls have no hosts, hands or protections (docs/PROTOCOL.md, hosts).
  const isRoom = !snap.isPrivate;
  const ownScreen = useMemo(
    () => (local.screen === null ? null : new MediaStream([local.screen])),
    [local.screen],
  );

  const invite = () => {
    if (!inviteLink) return;
    const fallback = () => setNotice(`Invite link: ${inviteLink}`);
    if (navigator.clipboard === undefined) {
      fallback();
      return;
    }
    navigator.clipboard
      .writeText(inviteLink)
      .then(() => setNotice("Invite link copied. Send it to the people you want to meet."), fallback);
  };

  return (
    <div className="room" data-testid="room">
      <header className="room-header">
        <h1 className="h6 m-0 text-truncate">{title}</h1>
        <span className="text-body-secondary small" data-testid="member-count">
          {snap.members.length + 1} in the {snap.isPrivate ? "call" : "room"}
        </span>
        {isRoom && (snap.locked || snap.protected || snap.lobby) && (
          <span className="d-flex gap-1" data-testid="room-protections">
            {snap.locked && (
              <span className="badge text-bg-warning" data-testid="badge-locked">
                Locked
              </span>
            )}
            {snap.protected && (
              <span className="badge text-bg-secondary" data-testid="badge-password">
                Password
              </span>
            )}
            {snap.lobby && (
              <span className="badge text-bg-secondary" data-testid="badge-lobby">
                Ask to join
              </span>
            )}
          </span>
        )}
        <span
          className="ms-auto text-body-secondary small text-truncate"
          role="status"
          data-testid="arrivals"
        >
          {arrivals}
        </span>
      </header>
      {snap.reconnecting && !snap.lost && <ReconnectingBanner />}
      {snap.lost && (
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
      {notice && (
        <div className="alert alert-info alert-dismissible m-2 py-2" role="status" data-testid="notice">
          {notice}
          <button
            type="button"
            className="btn-close"
            aria-label="Dismiss"
            data-testid="notice-dismiss"
            onClick={() => setNotice(null)}
          />
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
      {isRoom && snap.isHost && panel !== "security" && (
        <KnockNotices
          waiting={snap.waiting}
          dismissed={dismissed}
          onAdmit={hostActions.admit}
          onDeny={hostActions.deny}
          onDismiss={(id) => setDismissed((before) => new Set([...before, id]))}
          onOpenPanel={() => setPanel("security")}
        />
      )}
      <RoomNotes notes={snap.notes} />
      <div className="room-body">
        <main className="stage" aria-label="Participants' video">
          <Grid count={snap.members.length + 1}>
            <Tile
              name={snap.selfName}
              label={snap.selfLabel}
              host={snap.isHost}
              hand={snap.selfHand}
              media={self}
              camera={local.preview}
              screen={ownScreen}
              speaking={ownLevel > 0.08}
              self
            />
            {snap.members.map((m) => (
              <RemoteTile key={m.id} member={m} level={level} sinkId={local.speakerId} />
            ))}
          </Grid>
        </main>
        {panel && (
          <aside className="side-panel" aria-label={PANEL_TITLES[panel]}>
            <div className="side-head">
              <h2 className="h6 m-0">{PANEL_TITLES[panel]}</h2>
              <button
                type="button"
                className="btn btn-sm btn-link text-body"
                aria-label={`Close ${PANEL_TITLES[panel]}`}
                data-testid="panel-close"
                onClick={() => setPanel(null)}
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
            {panel === "settings" && (
              <div className="p-3">
                <DevicePickers
                  state={local}
                  onCamera={(id) => void media.useCamera(id)}
                  onMic={(id) => void media.useMic(id)}
                  onSpeaker={(id) => media.useSpeaker(id)}
                />
              </div>
            )}
          </aside>
        )}
      </div>
      <ControlBar
        micOn={self.mic}
        cameraOn={self.camera}
        sharing={self.screen}
        hasMic={local.audio !== null}
        hasCamera={local.video !== null}
        canShare={canShare && !snap.lost}
        panel={panel}
        unread={unread}
        leaveLabel={leaveLabel}
        {...(isRoom
          ? {
              hand: {
                raised: snap.selfHand !== null,
                onToggle: () => session.raiseHand(snap.selfHand === null),
              },
              security: { waiting: snap.isHost ? snap.waiting.length : 0 },
            }
          : {})}
        onMic={() => media.setMicOn(!local.micOn)}
        onCamera={() => media.setCameraOn(!local.cameraOn)}
        onScreen={() => (local.screen ? media.stopScreen() : void media.startScreen())}
        onPanel={setPanel}
        {...(inviteLink ? { onInvite: invite } : {})}
        onLeave={onLeave}
      />
    </div>
  );
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
