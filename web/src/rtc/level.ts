/** Audio levels (0..1): of a local track (`LevelMeter`), and of what is heard from RTP. */

/** How recent an RTP packet's level must be to count as heard now (ms). */
const HEARD_WITHIN_MS = 500;

/**
 * The loudest level (0..1) heard lately through these audio receivers: the RFC 6464 levels
 * of the RTP packets they received (webrtc-pc 5.3, `getSynchronizationSources`).
 */
export function heardLevel(receivers: Iterable<RTCRtpReceiver>, now: number = Date.now()): number {
  let level = 0;
  for (const receiver of receivers) {
    for (const source of receiver.getSynchronizationSources()) {
      if (now - source.timestamp < HEARD_WITHIN_MS) level = Math.max(level, source.audioLevel ?? 0);
    }
  }
  return level;
}

let shared: AudioContext | null = null;

/** Gestures that may start audio (HTML "activation triggering" events; a touch's pointerdown is not one). */
const ACTIVATING = ["keydown", "mousedown", "pointerup", "touchend", "click"] as const;

/**
 * The page's one Web Audio context (Web Audio API §1.2 `AudioContext`), made at first use and
 * kept: the meters of the pre-join page and of the room, and the room's sounds, all use it.
 * Making a context starts an audio rendering thread: about 17 ms of the room's first render
 * under a profiler on a 2-core machine (docs/BENCHMARKS.md, call set-up), and browsers
 * limit how many a page may hold. Made before any gesture, it starts suspended (autoplay
 * policy): each call asks it to resume, and so does every activating gesture until it runs
 * (again after an interruption). Throws where the browser has no Web Audio.
 */
export function pageAudio(): AudioContext {
  if (shared === null || shared.state === "closed") {
    const context = (shared = new AudioContext());
    const resume = () => {
      if (context.state !== "running" && context.state !== "closed")
        void context.resume().catch(() => undefined);
    };
    const listen = () => {
      const running = context.state === "running" || context.state === "closed";
      for (const kind of ACTIVATING) {
        if (running) window.removeEventListener(kind, resume, true);
        else window.addEventListener(kind, resume, true);
      }
    };
    context.addEventListener("statechange", listen);
    listen();
  }
  const context = shared;
  if (context.state !== "running") void context.resume().catch(() => undefined);
  return context;
}

/**
 * Audio level of a local track, from a Web Audio AnalyserNode: the RMS of the waveform,
 * scaled to 0..1. Remote levels come from RTP instead (`heardLevel`).
 */
export class LevelMeter {
  private readonly analyser: AnalyserNode;
  private readonly source: MediaStreamAudioSourceNode;
  private readonly buffer: Float32Array<ArrayBuffer>;

  constructor(track: MediaStreamTrack) {
    const context = pageAudio();
    this.source = context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = context.createAnalyser();
    this.analyser.fftSize = 512;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
  }

  /** The current level, 0 (silence) to 1 (loud). */
  read(): number {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const sample of this.buffer) sum += sample * sample;
    const rms = Math.sqrt(sum / this.buffer.length);
    return Math.min(1, rms * 4);
  }

  /** Stop metering; the page's context stays for the next meter. */
  close(): void {
    this.source.disconnect();
  }
}
