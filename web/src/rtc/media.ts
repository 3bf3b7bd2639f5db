/**
 * The local side: microphone, camera and screen tracks, device choice and on/off state.
 * Getting a device can fail (denied, missing, busy); each kind fails on its own, so a
 * person without a camera still joins with audio, and one with neither still receives.
 */
import { Emitter } from "../signaling/emitter";

export type DeviceProblem = "denied" | "missing" | "busy" | "failed";

export interface LocalMediaState {
  audio: MediaStreamTrack | null;
  video: MediaStreamTrack | null;
  screen: MediaStreamTrack | null;
  /** A stream of audio + video for previews (new identity when a track changes). */
  preview: MediaStream | null;
  micOn: boolean;
  cameraOn: boolean;
  audioProblem: DeviceProblem | null;
  videoProblem: DeviceProblem | null;
  devices: readonly MediaDeviceInfo[];
  micId: string;
  cameraId: string;
  speakerId: string;
  acquiring: boolean;
}

export interface TrackChange {
  kind: "audio" | "video" | "screen";
  track: MediaStreamTrack | null;
}

const VIDEO: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 480 } };
const AUDIO: MediaTrackConstraints = { echoCancellation: true, noiseSuppression: true };

function problemOf(error: unknown): DeviceProblem {
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "failed";
}

export class LocalMedia {
  private readonly events = new Emitter<{ change: LocalMediaState; track: TrackChange }>();
  private current: LocalMediaState = {
    audio: null,
    video: null,
    screen: null,
    preview: null,
    micOn: true,
    cameraOn: true,
    audioProblem: null,
    videoProblem: null,
    devices: [],
    micId: "",
    cameraId: "",
    speakerId: "",
    acquiring: true,
  };
  private readonly onDeviceChange = () => void this.refreshDevices();

  constructor(private readonly devices: MediaDevices | undefined = globalThis.navigator?.mediaDevices) {
    this.devices?.addEventListener?.("devicechange", this.onDeviceChange);
  }

  get state(): LocalMediaState {
    return this.current;
  }

  onChange(handler: (state: LocalMediaState) => void): () => void {
    return this.events.on("change", handler);
  }

  /** A track was swapped (device switch, screen share); the mesh replaces it everywhere. */
  onTrack(handler: (change: TrackChange) => void): () => void {
    return this.events.on("track", handler);
  }

  /** Ask for camera and microphone; each that fails is recorded, never thrown. */
  async start(): Promise<void> {
    if (this.devices === undefined) {
      this.update({ audioProblem: "failed", videoProblem: "failed" });
      return;
    }
    this.update({ acquiring: true });
    let audio: [MediaStreamTrack | null, DeviceProblem | null];
    let video: [MediaStreamTrack | null, DeviceProblem | null];
    try {
      const stream = await this.devices.getUserMedia({ audio: AUDIO, video: VIDEO });
      audio = [stream.getAudioTracks()[0] ?? null, null];
      video = [stream.getVideoTracks()[0] ?? null, null];
    } catch {
      // One kind may be the problem: ask for each alone to learn which.
      audio = await this.one("audio");
      video = await this.one("video");
    }
    this.publish(audio, video);
    await this.refreshDevices();
  }

  private publish(
    [audio, audioProblem]: [MediaStreamTrack | null, DeviceProblem | null],
    [video, videoProblem]: [MediaStreamTrack | null, DeviceProblem | null],
  ): void {
    this.setTracks(audio, video, { audioProblem, videoProblem, acquiring: false });
    // Anyone already connected (someone who joined before the devices answered) gets them.
    this.events.emit("track", { kind: "audio", track: audio });
    this.events.emit("track", { kind: "video", track: video });
  }

  setMicOn(on: boolean): void {
    if (this.current.audio) this.current.audio.enabled = on;
    this.update({ micOn: on });
  }

  setCameraOn(on: boolean): void {
    if (this.current.video) this.current.video.enabled = on;
    this.update({ cameraOn: on });
  }

  async useMic(deviceId: string): Promise<void> {
    const track = await this.switchDevice("audio", deviceId);
    if (track === null) return;
    this.current.audio?.stop();
    track.enabled = this.current.micOn;
    this.setTracks(track, this.current.video, { micId: deviceId, audioProblem: null });
    this.events.emit("track", { kind: "audio", track });
  }

  async useCamera(deviceId: string): Promise<void> {
    const track = await this.switchDevice("video", deviceId);
    if (track === null) return;
    this.current.video?.stop();
    track.enabled = this.current.cameraOn;
    this.setTracks(this.current.audio, track, { cameraId: deviceId, videoProblem: null });
    this.events.emit("track", { kind: "video", track });
  }

  useSpeaker(deviceId: string): void {
    this.update({ speakerId: deviceId });
  }

  /** Share a screen or window; resolves false when the person cancelled the picker. */
  async startScreen(): Promise<boolean> {
    if (this.devices?.getDisplayMedia === undefined) return false;
    let track: MediaStreamTrack | undefined;
    try {
      const stream = await this.devices.getDisplayMedia({ video: true, audio: false });
      track = stream.getVideoTracks()[0];
    } catch {
      return false;
    }
    if (track === undefined) return false;
    track.contentHint = "detail";
    track.onended = () => this.stopScreen(); // the browser's own "Stop sharing" button
    this.update({ screen: track });
    this.events.emit("track", { kind: "screen", track });
    return true;
  }

  stopScreen(): void {
    const track = this.current.screen;
    if (track === null) return;
    track.onended = null;
    track.stop();
    this.update({ screen: null });
    this.events.emit("track", { kind: "screen", track: null });
  }

  /** Release every device. */
  stop(): void {
    this.devices?.removeEventListener?.("devicechange", this.onDeviceChange);
    this.current.audio?.stop();
    this.current.video?.stop();
    this.current.screen?.stop();
    this.update({ audio: null, video: null, screen: null, preview: null });
  }

  private async one(kind: "audio" | "video"): Promise<[MediaStreamTrack | null, DeviceProblem | null]> {
    try {
      const constraints = kind === "audio" ? { audio: AUDIO } : { video: VIDEO };
      const stream = await this.devices!.getUserMedia(constraints);
      return [stream.getTracks()[0] ?? null, null];
    } catch (error) {
      return [null, problemOf(error)];
    }
  }

  private async switchDevice(kind: "audio" | "video", deviceId: string): Promise<MediaStreamTrack | null> {
    if (this.devices === undefined) return null;
    const base = kind === "audio" ? AUDIO : VIDEO;
    const constraints = { [kind]: { ...base, deviceId: { exact: deviceId } } };
    try {
      const stream = await this.devices.getUserMedia(constraints);
      return stream.getTracks()[0] ?? null;
    } catch (error) {
      this.update(kind === "audio" ? { audioProblem: problemOf(error) } : { videoProblem: problemOf(error) });
      return null;
    }
  }

  private setTracks(
    audio: MediaStreamTrack | null,
    video: MediaStreamTrack | null,
    extra: Partial<LocalMediaState>,
  ): void {
    if (audio) audio.enabled = this.current.micOn;
    if (video) video.enabled = this.current.cameraOn;
    const tracks = [audio, video].filter((t): t is MediaStreamTrack => t !== null);
    const preview = tracks.length > 0 && typeof MediaStream !== "undefined" ? new MediaStream(tracks) : null;
    this.update({
      audio,
      video,
      preview,
      micId: audio?.getSettings().deviceId ?? this.current.micId,
      cameraId: video?.getSettings().deviceId ?? this.current.cameraId,
      ...extra,
    });
  }

  private async refreshDevices(): Promise<void> {
    if (this.devices === undefined) return;
    try {
      const devices = await this.devices.enumerateDevices();
      this.update({ devices: devices.filter((d) => d.deviceId !== "") });
    } catch {
      // Listing devices is a nicety; the call works without it.
    }
  }

  private update(patch: Partial<LocalMediaState>): void {
    this.current = { ...this.current, ...patch };
    this.events.emit("change", this.current);
  }
}
