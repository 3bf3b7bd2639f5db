/**
 * Who is speaking, from audio levels sampled a few times a second, and who is the active
 * speaker shown large. Pure: levels and the time come in, the state goes out.
 *
 * Levels are linear 0..1. For remote members they are the RTP audio levels of what this side
 * receives (RFC 6464, read through RTCRtpReceiver.getSynchronizationSources(), W3C webrtc-pc
 * §5.4); for this side, the local microphone meter.
 *
 * Hysteresis keeps the highlight steady: speaking starts only above `on`, continues while the
 * level stays above the lower `off`, and ends only after `holdMs` below it (pauses between
 * words, or Chromium's fake microphone, which beeps twice a second, do not flicker it).
 *
 * In a room on the SFU, the SFU says who talks (`talking`, from the same RTP levels, with
 * its own hysteresis): a member speaks from its "talking" to its "stopped talking", exactly
 * (RemoteSpeakers).
 */

export interface SpeakerTuning {
  /** Level at which a silent member starts speaking. */
  readonly on: number;
  /** Level below which a speaking member counts as quiet (lower than `on`). */
  readonly off: number;
  /** How long a member stays speaking after going quiet (ms). */
  readonly holdMs: number;
  /** How long a member's speech must have lasted (first to last sound heard) before they can
   * become the active speaker (ms): a cough does not take over the stage. */
  readonly settleMs: number;
  /** How long someone must stay louder than a still-speaking active speaker to take over (ms). */
  readonly switchMs: number;
  /** Time constant of the loudness average used to compare speakers (ms). */
  readonly loudnessMs: number;
}

/** RTP audio levels: -30 dBov starts speech, -40 dBov ends it. */
export const REMOTE_TUNING: SpeakerTuning = {
  on: 0.03,
  off: 0.01,
  holdMs: 1_000,
  settleMs: 300,
  switchMs: 1_500,
  loudnessMs: 400,
};

/** The local meter (RMS × 4, see rtc/level.ts). */
export const LOCAL_TUNING: SpeakerTuning = { ...REMOTE_TUNING, on: 0.08, off: 0.04 };

/**
 * The SFU's talk events as levels of 1 (talking) and 0: speaking exactly while it says so.
 * It waited a second before saying so already: no hold, and no settling on top.
 */
export const TALKING_TUNING: SpeakerTuning = { ...REMOTE_TUNING, on: 0.5, off: 0.5, holdMs: 0, settleMs: 0 };

export interface SpeakerState {
  /** Members speaking now. */
  readonly speaking: ReadonlySet<string>;
  /** The active speaker: the one to show large; stays after they fall silent. */
  readonly active: string | null;
}

interface Voice {
  speaking: boolean;
  /** When this stretch of speech started. */
  since: number;
  /** Last time the level was above `off` while speaking. */
  heard: number;
  /** Smoothed level, to tell the louder of two speakers. */
  loudness: number;
  at: number;
}

export class SpeakerTracker {
  private readonly voices = new Map<string, Voice>();
  private active: string | null = null;
  /** A louder speaker waiting to take over from a still-speaking active one. */
  private challenger: { id: string; since: number } | null = null;

  constructor(private readonly tuning: SpeakerTuning = REMOTE_TUNING) {}

  /** Feed one level per present member; members not in `levels` are forgotten. */
  update(levels: ReadonlyMap<string, number>, now: number): SpeakerState {
    for (const id of this.voices.keys()) if (!levels.has(id)) this.voices.delete(id);
    for (const [id, level] of levels) this.hear(id, level, now);
    if (this.active !== null && !this.voices.has(this.active)) this.active = null;
    this.choose(now);
    return { speaking: this.speaking(), active: this.active };
  }

  private hear(id: string, level: number, now: number): void {
    const t = this.tuning;
    const voice = this.voices.get(id);
    if (voice === undefined) {
      const loud = level >= t.on;
      this.voices.set(id, { speaking: loud, since: now, heard: now, loudness: level, at: now });
      return;
    }
    const weight = 1 - Math.exp(-Math.max(0, now - voice.at) / t.loudnessMs);
    voice.loudness += (level - voice.loudness) * weight;
    voice.at = now;
    if (!voice.speaking) {
      if (level >= t.on) Object.assign(voice, { speaking: true, since: now, heard: now });
    } else if (level >= t.off) {
      voice.heard = now;
    } else if (now - voice.heard >= t.holdMs) {
      voice.speaking = false;
    }
  }

  private choose(now: number): void {
    // The hold does not count: only sound actually heard settles a speaker.
    const settled = [...this.voices]
      .filter(([, v]) => v.speaking && v.heard - v.since >= this.tuning.settleMs)
      .sort(([, a], [, b]) => b.loudness - a.loudness);
    const current = this.active === null ? undefined : this.voices.get(this.active);
    if (current === undefined || !current.speaking) {
      // The active speaker is quiet: the loudest settled speaker takes over; if no one
      // speaks, the last one stays.
      const loudest = settled[0];
      if (loudest !== undefined) this.active = loudest[0];
      this.challenger = null;
      return;
    }
    const loudest = settled.find(([id]) => id !== this.active);
    if (loudest === undefined || loudest[1].loudness <= current.loudness) {
      this.challenger = null;
      return;
    }
    if (this.challenger?.id !== loudest[0]) this.challenger = { id: loudest[0], since: now };
    else if (now - this.challenger.since >= this.tuning.switchMs) {
      this.active = loudest[0];
      this.challenger = null;
    }
  }

  private speaking(): Set<string> {
    return new Set([...this.voices].filter(([, v]) => v.speaking).map(([id]) => id));
  }
}

/** Whether two states show the same thing (to skip re-rendering when nothing changed). */
export function sameSpeakers(a: SpeakerState, b: SpeakerState): boolean {
  return a.active === b.active && a.speaking.size === b.speaking.size && [...a.speaking].every((id) => b.speaking.has(id));
}

/** A remote member whose speaking is tracked. */
export interface Listened {
  readonly id: string;
  /** Their microphone is on (a muted member is quiet whatever the level says). */
  readonly mic: boolean;
}

/** Where the others' speaking comes from, sample by sample. */
export interface Hearing {
  /** A member's RTP audio level now (0..1). */
  readonly level: (id: string) => number;
  /** On the SFU, the members it hears talking; null in a mesh room, where the levels tell. */
  readonly talking: ReadonlySet<string> | null;
}

/**
 * The others' speaking state: from their levels in a mesh room, from the SFU's talk events in
 * a room on the SFU. A room that moves to the SFU starts over.
 */
export class RemoteSpeakers {
  private tracker = new SpeakerTracker(REMOTE_TUNING);
  private fromTalking = false;

  /** One sample of the members present now. */
  update(members: readonly Listened[], hearing: Hearing, now: number): SpeakerState {
    const { level, talking } = hearing;
    if ((talking !== null) !== this.fromTalking) {
      this.fromTalking = talking !== null;
      this.tracker = new SpeakerTracker(this.fromTalking ? TALKING_TUNING : REMOTE_TUNING);
    }
    const heard = (id: string) => (talking === null ? level(id) : talking.has(id) ? 1 : 0);
    return this.tracker.update(new Map(members.map((m) => [m.id, m.mic ? heard(m.id) : 0])), now);
  }
}
