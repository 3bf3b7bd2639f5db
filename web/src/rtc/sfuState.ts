/**
 * How this side's media path to the SFU is doing, in one word, and the sentence the room shows
 * for it: no one should look at "Connecting…" tiles without being told why. Pure: the
 * connections' states and the time come in (sfu.ts gathers them), the state goes out.
 */

/**
 * - `off`: the room's media does not go through the SFU.
 * - `connecting`: a connection is being set up, or the SFU's first offer is due, for less than
 *   SFU_CONNECT_GRACE_MS so far.
 * - `connected`: every connection there is carries media.
 * - `slow`: a connection has been setting up, or the SFU's first offer has been due, for longer
 *   than the grace.
 * - `interrupted`: a connection is `disconnected` (ICE may come back by itself).
 * - `failed`: a connection `failed`.
 * - `retrying`: the SFU refused this side's offer (`sfu_unavailable`), which is made again; it
 *   comes first: while the SFU refuses, nothing else can work, and no restart would help.
 * - `restoring`: the SFU restarted (a second `room_media`); media is set up again.
 * - `reconnecting`: this side's connections did not work, and it asked the server for a new
 *   place on the SFU (`sfu_restart`, sfuWatchdog.ts); media is set up again.
 */
export type SfuState =
  | "off"
  | "connecting"
  | "connected"
  | "slow"
  | "interrupted"
  | "failed"
  | "retrying"
  | "restoring"
  | "reconnecting";

/** How long setting up a connection to the SFU goes unmentioned: it takes a second or two. */
export const SFU_CONNECT_GRACE_MS = 3_000;

/** One connection to the SFU: its `connectionState` (webrtc-pc 4.4.1), and when it was made. */
export interface SfuLeg {
  readonly state: RTCPeerConnectionState;
  readonly since: number;
}

/** What the state is decided from. */
export interface SfuPath {
  /** The sending connection; null when the room's media does not go through the SFU. */
  readonly publisher: SfuLeg | null;
  /** The receiving connection, made by the SFU's first offer; null before it. */
  readonly subscriber: SfuLeg | null;
  /**
   * Since when the SFU's first offer is due (others send media, the SFU answers this side, and
   * there is no receiving connection yet); null when none is due.
   */
  readonly offerDue: number | null;
  /** An offer the SFU refused is being made again. */
  readonly retrying: boolean;
  /** Started again from scratch after the SFU lost its state, and not settled since. */
  readonly restarted: boolean;
  /** Asked the server for a new place on the SFU (`sfu_restart`), and not settled since. */
  readonly reconnecting: boolean;
}

const SETTING_UP: ReadonlySet<RTCPeerConnectionState> = new Set(["new", "connecting"]);

/** The connections there are. */
const legs = (path: SfuPath): SfuLeg[] => [path.publisher, path.subscriber].filter((l) => l !== null);

/** When each step under way started: connections setting up, and the SFU's offer due. */
const underWay = (path: SfuPath): number[] => [
  ...legs(path)
    .filter((l) => SETTING_UP.has(l.state))
    .map((l) => l.since),
  ...(path.offerDue === null ? [] : [path.offerDue]),
];

/** Every connection carries media, and none is still due: what "restored" means. */
export function settled(path: SfuPath): boolean {
  return (
    path.publisher !== null && path.offerDue === null && legs(path).every((l) => l.state === "connected")
  );
}

/** The state at `now`, the most telling first (see SfuState). */
export function sfuState(path: SfuPath, now: number, graceMs: number = SFU_CONNECT_GRACE_MS): SfuState {
  if (path.publisher === null) return "off";
  // First: the SFU itself does not answer, whatever became of the connections or a restart.
  if (path.retrying) return "retrying";
  // Before `failed`: a connection that failed is what the restart mends.
  if (path.reconnecting && !settled(path)) return "reconnecting";
  const states = legs(path).map((l) => l.state);
  if (states.some((s) => s === "failed" || s === "closed")) return "failed";
  if (path.restarted && !settled(path)) return "restoring";
  if (states.includes("disconnected")) return "interrupted";
  if (underWay(path).some((since) => now - since >= graceMs)) return "slow";
  return settled(path) ? "connected" : "connecting";
}

/** Milliseconds until `sfuState` turns `slow` by itself; null when nothing is on its way. */
export function nextSlowMs(
  path: SfuPath,
  now: number,
  graceMs: number = SFU_CONNECT_GRACE_MS,
): number | null {
  const due = underWay(path)
    .map((since) => since + graceMs - now)
    .filter((ms) => ms > 0);
  return due.length === 0 ? null : Math.min(...due);
}

/** What the room says about the state; null when there is nothing to say. */
export function sfuNotice(state: SfuState): string | null {
  switch (state) {
    case "slow":
      return "Connecting to the media server…";
    case "interrupted":
      return "The connection to the media server was interrupted. Waiting for it to come back…";
    case "failed":
      return "The connection to the media server was lost. If media does not come back, leave and join again.";
    case "retrying":
      return "The media server is not answering. Trying again…";
    case "restoring":
      return "The media server restarted. Restoring media…";
    case "reconnecting":
      return "Reconnecting to the media server…";
    default:
      return null;
  }
}
