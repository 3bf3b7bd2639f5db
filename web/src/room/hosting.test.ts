import { describe, expect, it } from "vitest";
import type { ServerOf } from "../protocol";
import {
  MAX_NOTES,
  NO_CONTROL,
  describeEvent,
  reduceControl,
  type ControlMessage,
  type RoomControl,
} from "./hosting";

const NAMES: Record<string, string> = { me: "Me", ann: "Ann", bob: "Bob", sam2: "Sam (2)" };
const ctx = {
  selfId: "me",
  now: 1_000,
  nameOf: (id: string | null, given: string | null) => (id !== null ? (NAMES[id] ?? given) : given),
};
const run = (...messages: ControlMessage[]): RoomControl =>
  messages.reduce((state, m) => reduceControl(state, m, ctx), NO_CONTROL);

const joined = (extra: Partial<ServerOf<"joined">> = {}): ServerOf<"joined"> => ({
  type: "joined",
  room: "r",
  private: false,
  members: [],
  history: [],
  last_seq: 0,
  hosts: ["ann"],
  locked: true,
  lobby: true,
  protected: true,
  hands: ["bob", "me"],
  sfu: false,
  ...extra,
});

const event = (
  action: ServerOf<"room_event">["action"],
  by: string | null,
  target: string | null = null,
): ServerOf<"room_event"> => ({
  type: "room_event",
  room: "r",
  action,
  by,
  by_name: by === null ? null : `${by}-given`,
  target,
  target_name: target === null ? null : `${target}-given`,
});

const texts = (state: RoomControl) => state.notes.map((n) => n.text);

describe("reduceControl: snapshots", () => {
  it("takes hosts, lock, lobby, password and hands from joined", () => {
    const state = run(joined());
    expect(state).toMatchObject({
      hosts: ["ann"],
      locked: true,
      lobby: true,
      protected: true,
      hands: ["bob", "me"],
      waiting: [],
      departure: null,
    });
  });

  it("lets a later joined (a resume's snapshot) replace everything, the lobby list included", () => {
    const state = run(
      joined({ hosts: ["me"] }),
      { type: "lobby", room: "r", waiting: [{ id: "k1", name: "Kim", removed: false }] },
      joined({ hosts: ["me"], locked: false, lobby: false, protected: false, hands: [] }),
    );
    expect(state).toMatchObject({ locked: false, lobby: false, protected: false, hands: [], waiting: [] });
  });

  it("reads a joined from a server that says nothing of hosts", () => {
    const old = { type: "joined", room: "r", private: false, members: [], history: [], last_seq: 0 };
    expect(run(old as unknown as ServerOf<"joined">)).toMatchObject({ hosts: [], locked: false, hands: [] });
  });

  it("follows room_state, and forgets the lobby when this side is no longer a host", () => {
    const waiting = [{ id: "k1", name: "Kim", removed: true }];
    const host = run(joined({ hosts: ["me"] }), { type: "lobby", room: "r", waiting });
    expect(host.waiting).toEqual(waiting);
    const state = { type: "room_state", room: "r", locked: false, lobby: true, protected: false } as const;
    expect(reduceControl(host, { ...state, hosts: ["me", "ann"] }, ctx).waiting).toEqual(waiting);
    expect(reduceControl(host, { ...state, hosts: ["ann"] }, ctx)).toMatchObject({
      hosts: ["ann"],
      locked: false,
      waiting: [],
    });
  });

  it("keeps raised hands in the server's order", () => {
    const state = run(joined(), { type: "hands", room: "r", raised: ["me", "ann", "bob"] });
    expect(state.hands).toEqual(["me", "ann", "bob"]);
  });
});

describe("reduceControl: what hosts did", () => {
  it("notes each event in a sentence, naming people as they are shown", () => {
    const state = run(
      joined(),
      event("locked", "ann"),
      event("removed", "ann", "sam2"),
      event("host_granted", "ann", "bob"),
      event("host_passed", null, "bob"),
      event("lobby_on", "ann"),
      event("admitted", "ann", "zed"),
    );
    expect(texts(state)).toEqual([
      "Ann locked the meeting",
      "Ann removed Sam (2)",
      "Bob is now a host",
      "Bob is now a host",
      'Ann turned on "Ask to join"',
      "Ann let zed-given in",
    ]);
    expect(state.notes.map((n) => n.id)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(state.notes.every((n) => n.at === 1_000)).toBe(true);
  });

  it("speaks of this side in the second person", () => {
    expect(describeEvent(event("host_granted", "ann", "me"), ctx)).toBe("Ann made you a host");
    expect(describeEvent(event("host_granted", "me", "bob"), ctx)).toBe("You made Bob a host");
    expect(describeEvent(event("host_passed", null, "me"), ctx)).toBe("You are now a host");
    expect(describeEvent(event("unlocked", "me"), ctx)).toBe("You unlocked the meeting");
    expect(describeEvent(event("hand_lowered", "ann", "me"), ctx)).toBe("Ann lowered your hand");
    expect(describeEvent(event("stopped_camera", "ann", "bob"), ctx)).toBe("Ann turned off Bob's camera");
    expect(describeEvent(event("password_set", null), ctx)).toBe("A host set a password for the meeting");
    // Removed by the server API: nobody to name.
    expect(describeEvent(event("removed", null, "bob"), ctx)).toBe("Bob was removed");
  });

  it("says a mute of this side once, from `muted`, as personal", () => {
    const state = run(
      joined(),
      { type: "muted", room: "r", kind: "mic", by: "ann", by_name: "Ann" },
      event("muted_mic", "ann", "me"),
      { type: "muted", room: "r", kind: "camera", by: "x", by_name: "Xena" },
      event("muted_mic", "ann", "bob"),
    );
    expect(texts(state)).toEqual([
      "Ann muted your microphone",
      "Xena turned off your camera",
      "Ann muted Bob's microphone",
    ]);
    expect(state.notes.map((n) => n.personal)).toEqual([true, true, false]);
  });

  it("keeps only the latest notes", () => {
    const many = Array.from({ length: MAX_NOTES + 3 }, () => event("locked", "ann"));
    const state = run(joined(), ...many);
    expect(state.notes).toHaveLength(MAX_NOTES);
    expect(state.notes.at(-1)?.id).toBe(MAX_NOTES + 3);
  });
});

describe("reduceControl: leaving", () => {
  it("records why this side is out of the room, and who did it", () => {
    const left = (reason: ServerOf<"left">["reason"], by: string | null, byName: string | null) =>
      run(joined(), { type: "left", room: "r", reason, by, by_name: byName }).departure;
    expect(left("removed", "x", "Xena")).toEqual({ reason: "removed", by: "Xena", byMe: false });
    expect(left("ended", "x", "Xena")).toEqual({ reason: "ended", by: "Xena", byMe: false });
    expect(left("ended", "me", "Me")).toMatchObject({ reason: "ended", byMe: true });
    expect(left("left", null, null)).toEqual({ reason: "left", by: null, byMe: false });
  });

  it("reads a left without a reason (an older server) as leaving", () => {
    const old = { type: "left", room: "r" } as unknown as ServerOf<"left">;
    expect(run(joined(), old).departure).toEqual({ reason: "left", by: null, byMe: false });
  });

  it("tells a turned-away knock from a meeting that ended", () => {
    expect(run({ type: "lobby_denied", room: "r", reason: "denied" }).departure).toEqual({
      reason: "denied",
      by: null,
    });
    expect(run({ type: "lobby_denied", room: "r", reason: "ended" }).departure).toEqual({
      reason: "ended",
      by: null,
    });
  });
});
