/**
 * What a host asks of the room (docs/PROTOCOL.md, hosts). The server checks every action:
 * a refusal comes back as an error (`not_host`, `no_such_member`, `room_full`) and changes
 * nothing; success comes back to everyone as `room_state`, `hands` or `lobby`, with a
 * `room_event` saying who did what. Nothing here changes local state ahead of the server.
 *
 * The actions are bound functions, so the UI can hand them to buttons as they are.
 */
import type { ClientMessage } from "../protocol";

export class HostActions {
  /** `send` returns false when the message cannot go out (not in a room, no connection). */
  constructor(private readonly send: (message: ClientMessage) => boolean) {}

  /** Lock the room (nobody new may join or knock) or unlock it. */
  readonly lock = (locked: boolean): boolean => this.send({ type: "room_lock", locked });

  /** Set or change the room's password; null or "" removes it. */
  readonly setPassword = (password: string | null): boolean =>
    this.send({ type: "room_password", password: password === "" ? null : password });

  /** Turn "Ask to join" on or off; off lets everyone waiting in. */
  readonly setLobby = (enabled: boolean): boolean => this.send({ type: "room_lobby", enabled });

  readonly admit = (id: string): boolean => this.send({ type: "lobby_admit", id });

  readonly deny = (id: string): boolean => this.send({ type: "lobby_deny", id });

  readonly makeHost = (id: string): boolean => this.send({ type: "make_host", id });

  /** Take a member out; they come back only if a host lets them in. */
  readonly remove = (id: string): boolean => this.send({ type: "remove", id });

  /** Turn off a member's microphone or camera; only they can turn it back on. */
  readonly mute = (id: string, kind: "mic" | "camera"): boolean => this.send({ type: "mute", id, kind });

  readonly lowerHand = (id: string): boolean => this.send({ type: "lower_hand", id });

  /** Everyone, this host included, leaves; everyone waiting is turned away. */
  readonly endMeeting = (): boolean => this.send({ type: "end_meeting" });
}
