/**
 * The room's roles and protections as this client knows them (docs/PROTOCOL.md, hosts):
 * who hosts, whether the room is locked, has a password or a lobby, whose hand is up (in
 * order), who waits in the lobby (hosts only), what hosts did lately, and why this side is
 * out of the room. A pure reducer: the RoomSession feeds it server messages and renders
 * the result; every `joined` snapshot replaces what was held.
 */
import type { ServerOf } from "../protocol";
import type { Knocker } from "../protocol/generated";

export type { Knocker };

/** Why this side is no longer in the room or its lobby. */
export type DepartureReason = "left" | "removed" | "ended" | "hangup" | "denied";

export interface Departure {
  readonly reason: DepartureReason;
  /** The host who removed this side or ended the meeting, by name; null when not said. */
  readonly by: string | null;
  /** This side is that host (it ended the meeting itself). */
  readonly byMe?: boolean;
}

/** One line about what happened in the room ("Ann locked the meeting"). */
export interface RoomNote {
  readonly id: number;
  readonly text: string;
  /** When it arrived (ms since the epoch): the UI lets it fade a few seconds later. */
  readonly at: number;
  /** About this side itself (a host muted you): shown a little longer. */
  readonly personal: boolean;
}

export interface RoomControl {
  readonly hosts: readonly string[];
  readonly locked: boolean;
  readonly lobby: boolean;
  /** Joining needs the room's password (or a host's admission). */
  readonly protected: boolean;
  /** Member ids whose hand is raised, the earliest first. */
  readonly hands: readonly string[];
  /** Who waits in the lobby, the earliest first; only hosts are told. */
  readonly waiting: readonly Knocker[];
  /** The latest notes, oldest first (at most MAX_NOTES). */
  readonly notes: readonly RoomNote[];
  readonly departure: Departure | null;
}

export const NO_CONTROL: RoomControl = {
  hosts: [],
  locked: false,
  lobby: false,
  protected: false,
  hands: [],
  waiting: [],
  notes: [],
  departure: null,
};

export const MAX_NOTES = 8;

export type ControlMessage = ServerOf<
  "joined" | "room_state" | "hands" | "room_event" | "lobby" | "muted" | "left" | "lobby_denied"
>;

export interface ControlContext {
  readonly selfId: string;
  /** Now, in ms since the epoch: when a note arrived. */
  readonly now: number;
  /** How a member is shown (their label, telling two "Sam" apart), else the name given. */
  readonly nameOf: (id: string | null, given: string | null) => string | null;
}

/** The state after one server message; anything else leaves it as it is. */
export function reduceControl(state: RoomControl, message: ControlMessage, ctx: ControlContext): RoomControl {
  switch (message.type) {
    case "joined":
      // Older servers say nothing of hosts: read each field defensively.
      return {
        ...state,
        hosts: message.hosts ?? [],
        locked: message.locked ?? false,
        lobby: message.lobby ?? false,
        protected: message.protected ?? false,
        hands: message.hands ?? [],
        waiting: [], // a host gets `lobby` right after `joined` when someone waits
        departure: null,
      };
    case "room_state": {
      const host = message.hosts.includes(ctx.selfId);
      return {
        ...state,
        hosts: message.hosts,
        locked: message.locked,
        lobby: message.lobby,
        protected: message.protected,
        waiting: host ? state.waiting : [],
      };
    }
    case "hands":
      return { ...state, hands: message.raised };
    case "lobby":
      return { ...state, waiting: message.waiting };
    case "room_event": {
      // A host muting this side is told by `muted` too, which says it in the second person.
      const toSelf = message.target === ctx.selfId;
      if (toSelf && (message.action === "muted_mic" || message.action === "stopped_camera")) return state;
      return addNote(state, describeEvent(message, ctx), ctx.now, toSelf);
    }
    case "muted": {
      const by = ctx.nameOf(message.by, message.by_name) ?? "A host";
      const what = message.kind === "mic" ? "muted your microphone" : "turned off your camera";
      return addNote(state, `${by} ${what}`, ctx.now, true);
    }
    case "left":
      return {
        ...state,
        departure: {
          reason: message.reason ?? "left",
          by: ctx.nameOf(message.by ?? null, message.by_name ?? null),
          byMe: message.by != null && message.by === ctx.selfId,
        },
        hands: [],
      };
    case "lobby_denied":
      return {
        ...state,
        departure: { reason: message.reason === "ended" ? "ended" : "denied", by: null },
      };
  }
}

function addNote(state: RoomControl, text: string, at: number, personal: boolean): RoomControl {
  const id = (state.notes.at(-1)?.id ?? 0) + 1;
  const notes = [...state.notes, { id, text, at, personal }].slice(-MAX_NOTES);
  return { ...state, notes };
}

/** A room event in a sentence, in the second person when it is about this side. */
export function describeEvent(event: ServerOf<"room_event">, ctx: ControlContext): string {
  const byMe = event.by !== null && event.by === ctx.selfId;
  const toMe = event.target !== null && event.target === ctx.selfId;
  const by = byMe ? "You" : (ctx.nameOf(event.by, event.by_name) ?? "A host");
  const target = toMe ? "you" : (ctx.nameOf(event.target, event.target_name) ?? "someone");
  const whose = toMe ? "your" : `${target}'s`;
  switch (event.action) {
    case "locked":
      return `${by} locked the meeting`;
    case "unlocked":
      return `${by} unlocked the meeting`;
    case "password_set":
      return `${by} set a password for the meeting`;
    case "password_removed":
      return `${by} removed the meeting's password`;
    case "lobby_on":
      return `${by} turned on "Ask to join"`;
    case "lobby_off":
      return `${by} turned off "Ask to join"`;
    case "admitted":
      return `${by} let ${target} in`;
    case "denied":
      return `${by} did not let ${target} in`;
    case "removed":
      if (event.by === null) return toMe ? "You were removed" : `${capitalize(target)} was removed`;
      return `${by} removed ${target}`;
    case "muted_mic":
      return `${by} muted ${whose} microphone`;
    case "stopped_camera":
      return `${by} turned off ${whose} camera`;
    case "hand_lowered":
      return `${by} lowered ${whose} hand`;
    case "host_granted":
      if (toMe) return `${by} made you a host`;
      return byMe ? `You made ${target} a host` : `${capitalize(target)} is now a host`;
    case "host_passed":
      return toMe ? "You are now a host" : `${capitalize(target)} is now a host`;
    // by null: the recorder stopped by itself (the room emptied, the size limit, a failure).
    case "recording_started":
      return event.by === null ? "Recording started" : `${by} started recording`;
    case "recording_stopped":
      return event.by === null ? "Recording stopped" : `${by} stopped recording`;
  }
}

function capitalize(text: string): string {
  return text === "someone" ? "Someone" : text;
}
