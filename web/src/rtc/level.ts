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

/**
 * Audio level of a local track, from a Web Audio AnalyserNode: the RMS of the waveform,
 * scaled to 0..1. Remote levels come from RTP instead (`heardLevel`).
 */
export class LevelMeter {
  private readonly context: AudioContext;
  private readonly analyser: AnalyserNode;
  private readonly source: MediaStreamAudioSourceNode;
  private readonly buffer: Float32Array<ArrayBuffer>;

  constructor(track: MediaStreamTrack) {
    this.context = new AudioContext();
    this.source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 512;
    this.buffer = new Float32Array(this.analyser.fftSize);
    this.source.connect(this.analyser);
    // A context made before any click starts suspended; resume on the first gesture.
    if (this.context.state === "suspended") {
      const resume = () => void this.context.resume();
      window.addEventListener("pointerdown", resume, { once: true });
      window.addEventListener("keydown", resume, { once: true });
      void this.context.resume();
    }
  }

  /** The current level, 0 (silence) to 1 (loud). */
  read(): number {
    this.analyser.getFloatTimeDomainData(this.buffer);
    let sum = 0;
    for (const sample of this.buffer) sum += sample * sample;
    const rms = Math.sqrt(sum / this.buffer.length);
    return Math.min(1, rms * 4);
  }

  close(): void {
    this.source.disconnect();
    void this.context.close();
  }
}
