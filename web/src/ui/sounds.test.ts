import { afterEach, describe, expect, it, vi } from "vitest";
import {
  DEFAULT_SOUND_PREFS,
  RING_PERIOD_MS,
  RoomSoundTracker,
  SETTLE_MS,
  SOUND_PREFS_KEY,
  SoundPlayer,
  SoundPrefsStore,
  TONES,
  parseSoundPrefs,
  type AudioContextLike,
  type RoomSoundView,
  type SoundPrefs,
} from "./sounds";

const view = (over: Partial<RoomSoundView> = {}): RoomSoundView => ({
  phase: "joined",
  selfId: "me",
  memberIds: [],
  hands: [],
  unread: 0,
  reconnecting: false,
  ...over,
});

/** A tracker that has been in the room long enough for changes to count. */
function settled(first: Partial<RoomSoundView> = {}) {
  const tracker = new RoomSoundTracker();
  tracker.observe(view({ phase: "joining" }), 0);
  tracker.observe(view(first), 1_000);
  expect(tracker.observe(view(first), 1_000 + SETTLE_MS)).toEqual([]);
  return { tracker, at: 1_000 + SETTLE_MS };
}

describe("RoomSoundTracker", () => {
  it("is silent for the member list and hands a join brings, even in several steps", () => {
    const tracker = new RoomSoundTracker();
    expect(tracker.observe(view({ phase: "joining" }), 0)).toEqual([]);
    expect(tracker.observe(view(), 10)).toEqual([]);
    expect(tracker.observe(view({ memberIds: ["a", "b"], hands: ["a"] }), 20)).toEqual([]);
  });

  it("sounds once when people join, and when they leave", () => {
    const { tracker, at } = settled({ memberIds: ["a"] });
    expect(tracker.observe(view({ memberIds: ["a", "b", "c"] }), at + 1)).toEqual(["join"]);
    expect(tracker.observe(view({ memberIds: ["a", "b", "c"] }), at + 2)).toEqual([]);
    expect(tracker.observe(view({ memberIds: ["c"] }), at + 3)).toEqual(["leave"]);
  });

  it("is silent while reconnecting and for the reconciliation after it", () => {
    const { tracker, at } = settled({ memberIds: ["a", "b"] });
    expect(tracker.observe(view({ memberIds: [], reconnecting: true }), at + 1)).toEqual([]);
    expect(tracker.observe(view({ memberIds: ["a"] }), at + 2)).toEqual([]);
    expect(tracker.observe(view({ memberIds: ["a", "c"] }), at + 3)).toEqual([]);
    // Once settled, a real arrival counts again.
    expect(tracker.observe(view({ memberIds: ["a", "c", "d"] }), at + 2 + SETTLE_MS)).toEqual(["join"]);
  });

  it("sounds for someone else's raised hand, not for one's own", () => {
    const { tracker, at } = settled({ memberIds: ["a"] });
    expect(tracker.observe(view({ memberIds: ["a"], hands: ["me"] }), at + 1)).toEqual([]);
    expect(tracker.observe(view({ memberIds: ["a"], hands: ["me", "a"] }), at + 2)).toEqual(["hand"]);
    expect(tracker.observe(view({ memberIds: ["a"], hands: ["a"] }), at + 3)).toEqual([]);
  });

  it("sounds for the first unread message only", () => {
    const { tracker, at } = settled();
    expect(tracker.observe(view({ unread: 1 }), at + 1)).toEqual(["chat"]);
    expect(tracker.observe(view({ unread: 2 }), at + 2)).toEqual([]);
    expect(tracker.observe(view({ unread: 0 }), at + 3)).toEqual([]); // read
    expect(tracker.observe(view({ unread: 1 }), at + 4)).toEqual(["chat"]);
  });

  it("is silent after leaving", () => {
    const { tracker, at } = settled({ memberIds: ["a"] });
    expect(tracker.observe(view({ phase: "left", memberIds: [] }), at + 1)).toEqual([]);
  });
});

describe("sound choices", () => {
  it("are all on by default and keep what was stored", () => {
    expect(parseSoundPrefs(null)).toEqual(DEFAULT_SOUND_PREFS);
    expect(parseSoundPrefs("not json")).toEqual(DEFAULT_SOUND_PREFS);
    expect(parseSoundPrefs('{"leave": false, "chat": "no", "x": 1}')).toEqual({
      ...DEFAULT_SOUND_PREFS,
      leave: false,
    });
  });

  it("are saved and told to subscribers", () => {
    const kept = new Map<string, string>();
    const storage = {
      getItem: (k: string) => kept.get(k) ?? null,
      setItem: (k: string, v: string) => void kept.set(k, v),
    };
    const store = new SoundPrefsStore(storage);
    const heard = vi.fn();
    store.subscribe(heard);
    store.set("hand", false);
    expect(heard).toHaveBeenCalledTimes(1);
    expect(JSON.parse(kept.get(SOUND_PREFS_KEY) ?? "{}")).toMatchObject({ hand: false, join: true });
    expect(new SoundPrefsStore(storage).snapshot.hand).toBe(false);
  });
});

/** Records the oscillators started on it. */
class FakeAudio implements AudioContextLike {
  currentTime = 5;
  state = "suspended";
  resumed = 0;
  readonly destination = {} as AudioNode;
  readonly started: { freq: number; at: number; stopped: boolean }[] = [];

  resume(): Promise<void> {
    this.resumed++;
    this.state = "running";
    return Promise.resolve();
  }

  createOscillator(): OscillatorNode {
    const note = { freq: 0, at: 0, stopped: false };
    const param = { setValueAtTime: (v: number) => (note.freq = v) };
    return {
      type: "sine",
      frequency: param,
      connect: (node: unknown) => node,
      start: (at: number) => {
        note.at = at;
        this.started.push(note);
      },
      stop: (at?: number) => {
        if (at === undefined) note.stopped = true;
      },
    } as unknown as OscillatorNode;
  }

  createGain(): GainNode {
    const param = { setValueAtTime() {}, linearRampToValueAtTime() {}, exponentialRampToValueAtTime() {} };
    return { gain: param, connect: (node: unknown) => node, disconnect() {} } as unknown as GainNode;
  }
}

describe("SoundPlayer", () => {
  afterEach(() => vi.useRealTimers());

  const player = (prefs: Partial<SoundPrefs> = {}) => {
    const audio = new FakeAudio();
    const made = vi.fn(() => audio);
    return { audio, made, player: new SoundPlayer(() => ({ ...DEFAULT_SOUND_PREFS, ...prefs }), made) };
  };

  it("plays the tone's notes in order, resuming a suspended context", () => {
    const { audio, player: p } = player();
    expect(p.play("join")).toBe(true);
    expect(audio.resumed).toBe(1);
    expect(audio.started.map((n) => n.freq)).toEqual(TONES.join.notes.map((n) => n.freq));
    expect(audio.started[1]!.at).toBeGreaterThan(audio.started[0]!.at);
  });

  it("tells a join from a leave: rising, then falling", () => {
    const [up1, up2] = TONES.join.notes;
    const [down1, down2] = TONES.leave.notes;
    expect(up2!.freq).toBeGreaterThan(up1!.freq);
    expect(down2!.freq).toBeLessThan(down1!.freq);
  });

  it("plays nothing, and makes no audio context, for a sound turned off", () => {
    const { audio, made, player: p } = player({ chat: false });
    expect(p.play("chat")).toBe(false);
    expect(made).not.toHaveBeenCalled();
    expect(audio.started).toEqual([]);
  });

  it("rings until stopped, then silences the ring under way", () => {
    vi.useFakeTimers();
    const { audio, player: p } = player();
    const stop = p.ring();
    const perRing = TONES.ringtone.notes.length;
    expect(audio.started).toHaveLength(perRing);
    vi.advanceTimersByTime(RING_PERIOD_MS * 2);
    expect(audio.started).toHaveLength(perRing * 3);
    stop();
    expect(audio.started.slice(-perRing).every((n) => n.stopped)).toBe(true);
    vi.advanceTimersByTime(RING_PERIOD_MS * 2);
    expect(audio.started).toHaveLength(perRing * 3);
  });

  it("skips rings while the ringtone is off", () => {
    vi.useFakeTimers();
    let on = false;
    const audio = new FakeAudio();
    const p = new SoundPlayer(
      () => ({ ...DEFAULT_SOUND_PREFS, ringtone: on }),
      () => audio,
    );
    const stop = p.ring();
    expect(audio.started).toHaveLength(0);
    on = true;
    vi.advanceTimersByTime(RING_PERIOD_MS);
    expect(audio.started).toHaveLength(TONES.ringtone.notes.length);
    stop();
  });
});
