/**
 * Short sounds for what happens in a meeting (someone joins, leaves, writes, raises a hand)
 * and a ringtone for an incoming direct call. Tones are made with Web Audio oscillators (no
 * audio files to fetch or allow in the CSP). Each sound can be turned off; the choices live
 * in localStorage under `salon.sounds`.
 *
 * Framework-free: `RoomSoundTracker` decides which changes make a sound, `SoundPlayer` plays
 * them, `SoundPrefsStore` keeps the choices; React hooks (ui/hooks/sounds.ts) tie them up.
 */
import { pageAudio } from "../rtc/level";

export type SoundKind = "join" | "leave" | "chat" | "hand" | "ringtone";

export const SOUND_KINDS: readonly SoundKind[] = ["join", "leave", "chat", "hand", "ringtone"];

/** Which sounds are on. */
export type SoundPrefs = Readonly<Record<SoundKind, boolean>>;

export const DEFAULT_SOUND_PREFS: SoundPrefs = {
  join: true,
  leave: true,
  chat: true,
  hand: true,
  ringtone: true,
};

export const SOUND_PREFS_KEY = "salon.sounds";

/** The part of `Storage` used here; tests pass a Map-backed fake. */
export interface PrefsStorage {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
}

/** Stored choices; anything missing or not a boolean is on (the default). */
export function parseSoundPrefs(raw: string | null): SoundPrefs {
  const prefs: Record<SoundKind, boolean> = { ...DEFAULT_SOUND_PREFS };
  const stored = parseJson(raw);
  if (typeof stored !== "object" || stored === null) return prefs;
  for (const kind of SOUND_KINDS) {
    const value = (stored as Record<string, unknown>)[kind];
    if (typeof value === "boolean") prefs[kind] = value;
  }
  return prefs;
}

function parseJson(raw: string | null): unknown {
  try {
    return raw === null ? null : JSON.parse(raw);
  } catch {
    return null;
  }
}

/** The sound choices as a store (`snapshot` + `subscribe`), saved on every change. */
export class SoundPrefsStore {
  private current: SoundPrefs;
  private readonly handlers = new Set<() => void>();

  constructor(private readonly storage: PrefsStorage | null) {
    this.current = parseSoundPrefs(read(storage));
  }

  get snapshot(): SoundPrefs {
    return this.current;
  }

  subscribe(handler: () => void): () => void {
    this.handlers.add(handler);
    return () => this.handlers.delete(handler);
  }

  set(kind: SoundKind, on: boolean): void {
    if (this.current[kind] === on) return;
    this.current = { ...this.current, [kind]: on };
    try {
      this.storage?.setItem(SOUND_PREFS_KEY, JSON.stringify(this.current));
    } catch {
      // storage full or blocked: the choice holds for this page
    }
    for (const handler of [...this.handlers]) handler();
  }
}

function read(storage: PrefsStorage | null): string | null {
  try {
    return storage?.getItem(SOUND_PREFS_KEY) ?? null;
  } catch {
    return null;
  }
}

function browserStorage(): PrefsStorage | null {
  try {
    return typeof localStorage === "undefined" ? null : localStorage;
  } catch {
    return null; // storage blocked (some private modes)
  }
}

/** This browser's sound choices. */
export const soundPrefs = new SoundPrefsStore(browserStorage());

// ---------------------------------------------------------------------------------------
// Which changes make a sound

/** What of a room snapshot decides its sounds. */
export interface RoomSoundView {
  readonly phase: string;
  readonly selfId: string;
  /** Everyone else in the room, by id. */
  readonly memberIds: readonly string[];
  /** Raised hands by member id (this side's own included or not: it never sounds). */
  readonly hands: readonly string[];
  /** Unread chat messages (0 while the chat panel is open). */
  readonly unread: number;
  /** This side's connection is away: the room will be reconciled when it is back. */
  readonly reconnecting: boolean;
}

/**
 * After joining, and after the connection came back, the member list is filled in or
 * reconciled in a few steps: those changes are not people joining or leaving.
 */
export const SETTLE_MS = 2_000;

/**
 * Turns successive room views into the sounds they call for:
 * - join / leave: someone else came in or went away — not the member list a join brings,
 *   nor what a resume's reconciliation adds or removes (SETTLE_MS after either);
 * - chat: a message from someone else while the chat is closed and nothing was unread;
 * - hand: someone else raised a hand.
 */
export class RoomSoundTracker {
  private members: ReadonlySet<string> | null = null;
  private hands: ReadonlySet<string> = new Set();
  private unread = 0;
  private reconnecting = false;
  private quietUntil = 0;

  /** The sounds this view calls for, each kind at most once; `now` in milliseconds. */
  observe(view: RoomSoundView, now: number): SoundKind[] {
    const sounds = new Set<SoundKind>();
    if (view.unread > 0 && this.unread === 0 && view.phase === "joined") sounds.add("chat");
    this.unread = view.unread;
    if (view.phase !== "joined") {
      this.members = null;
      this.hands = new Set();
      return [...sounds];
    }
    const members = new Set(view.memberIds);
    const hands = new Set(view.hands.filter((id) => id !== view.selfId));
    const before = this.members;
    if (view.reconnecting) this.quietUntil = Number.POSITIVE_INFINITY;
    else if (before === null || this.reconnecting) this.quietUntil = now + SETTLE_MS;
    if (before !== null && now >= this.quietUntil) {
      if (someNotIn(members, before)) sounds.add("join");
      if (someNotIn(before, members)) sounds.add("leave");
      if (someNotIn(hands, this.hands)) sounds.add("hand");
    }
    this.members = members;
    this.hands = hands;
    this.reconnecting = view.reconnecting;
    return [...sounds];
  }
}

function someNotIn(these: ReadonlySet<string>, those: ReadonlySet<string>): boolean {
  for (const id of these) if (!those.has(id)) return true;
  return false;
}

// ---------------------------------------------------------------------------------------
// Tones

/** One tone of a sound: `at` and `duration` in seconds from the sound's start. */
export interface Note {
  readonly freq: number;
  readonly at: number;
  readonly duration: number;
}

interface Tone {
  readonly notes: readonly Note[];
  readonly wave: OscillatorType;
  /** Peak gain (0..1): quiet, the meeting's voices come first. */
  readonly gain: number;
}

const C5 = 523.25;
const E5 = 659.25;
const G5 = 783.99;
const GS5 = 830.61;
const A5 = 880;
const B5 = 987.77;
const E6 = 1318.51;

/** A rising pair for a join, a falling one for a leave, a bright blip for chat, two dings for a hand. */
export const TONES: Readonly<Record<SoundKind, Tone>> = {
  join: {
    wave: "sine",
    gain: 0.12,
    notes: [
      { freq: C5, at: 0, duration: 0.12 },
      { freq: G5, at: 0.1, duration: 0.2 },
    ],
  },
  leave: {
    wave: "sine",
    gain: 0.12,
    notes: [
      { freq: G5, at: 0, duration: 0.12 },
      { freq: C5, at: 0.1, duration: 0.2 },
    ],
  },
  chat: {
    wave: "sine",
    gain: 0.1,
    notes: [
      { freq: B5, at: 0, duration: 0.08 },
      { freq: E6, at: 0.07, duration: 0.12 },
    ],
  },
  hand: {
    wave: "triangle",
    gain: 0.14,
    notes: [
      { freq: A5, at: 0, duration: 0.14 },
      { freq: A5, at: 0.18, duration: 0.2 },
    ],
  },
  // One ring: a trill, then silence until the next (RING_PERIOD_MS).
  ringtone: {
    wave: "triangle",
    gain: 0.16,
    notes: [
      { freq: E5, at: 0, duration: 0.22 },
      { freq: GS5, at: 0.25, duration: 0.22 },
      { freq: E5, at: 0.5, duration: 0.22 },
      { freq: GS5, at: 0.75, duration: 0.3 },
    ],
  },
};

/** A ringtone rings once every this many milliseconds until it is stopped. */
export const RING_PERIOD_MS = 3_000;

/** Envelope: a quick rise (no click), then a decay to silence. */
const ATTACK_S = 0.01;
const SILENT = 0.0001;

/** The part of Web Audio used here; tests pass a recording fake. */
export interface AudioContextLike {
  readonly currentTime: number;
  readonly state: string;
  readonly destination: AudioNode;
  resume(): Promise<void>;
  createOscillator(): OscillatorNode;
  createGain(): GainNode;
}

function browserAudio(): AudioContextLike | null {
  try {
    return typeof AudioContext === "undefined" ? null : pageAudio();
  } catch {
    return null;
  }
}

/** Plays sounds that are turned on, through the page's audio context (the first sound makes it). */
export class SoundPlayer {
  private context: AudioContextLike | null = null;

  constructor(
    private readonly prefs: () => SoundPrefs,
    private readonly makeContext: () => AudioContextLike | null = browserAudio,
  ) {}

  /** Play a sound once, if it is on; false when it is off or audio is unavailable. */
  play(kind: SoundKind): boolean {
    return this.start(kind).length > 0;
  }

  /**
   * Ring now and every RING_PERIOD_MS until the returned function is called, which also
   * silences the ring under way; a ring is skipped while the ringtone is turned off.
   */
  ring(): () => void {
    let ringing = this.start("ringtone");
    const timer = setInterval(() => (ringing = this.start("ringtone")), RING_PERIOD_MS);
    return () => {
      clearInterval(timer);
      for (const oscillator of ringing) stopNow(oscillator);
    };
  }

  private start(kind: SoundKind): OscillatorNode[] {
    if (!this.prefs()[kind]) return [];
    const context = this.audio();
    if (context === null) return [];
    const tone = TONES[kind];
    const start = context.currentTime + 0.02;
    return tone.notes.map((note) => playNote(context, tone, note, start));
  }

  private audio(): AudioContextLike | null {
    this.context ??= this.makeContext();
    const context = this.context;
    // Made before the page was used, a context starts suspended (autoplay policy).
    if (context !== null && context.state === "suspended") context.resume().catch(() => undefined);
    return context;
  }
}

function playNote(context: AudioContextLike, tone: Tone, note: Note, start: number): OscillatorNode {
  const t = start + note.at;
  const end = t + note.duration;
  const oscillator = context.createOscillator();
  const gain = context.createGain();
  oscillator.type = tone.wave;
  oscillator.frequency.setValueAtTime(note.freq, t);
  gain.gain.setValueAtTime(SILENT, t);
  gain.gain.linearRampToValueAtTime(tone.gain, t + ATTACK_S);
  gain.gain.exponentialRampToValueAtTime(SILENT, end);
  oscillator.connect(gain).connect(context.destination);
  oscillator.start(t);
  oscillator.stop(end + 0.02);
  oscillator.onended = () => gain.disconnect();
  return oscillator;
}

function stopNow(oscillator: OscillatorNode): void {
  try {
    oscillator.stop();
  } catch {
    // already stopped
  }
}

/** This page's sounds, obeying this browser's choices. */
export const sounds = new SoundPlayer(() => soundPrefs.snapshot);
