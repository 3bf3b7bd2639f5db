/**
 * The local side: microphone, camera and screen tracks, device choice and on/off state.
 * Getting a device can fail (denied, missing, busy); each kind fails on its own, so a
 * person without a camera still joins with audio, and one with neither still receives.
 */
import { Emitter } from "../signaling/emitter";

export type DeviceProblem = "denied" | "missing" | "busy" | "failed";

/** The microphone's processing switches (Media Capture and Streams, constrainable properties). */
export interface AudioProcessing {
  noiseSuppression: boolean;
  echoCancellation: boolean;
}

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
  /** The processing asked of the microphone; remembered for the next visit. */
  processing: AudioProcessing;
}

export interface TrackChange {
  kind: "audio" | "video" | "screen";
  track: MediaStreamTrack | null;
}

const VIDEO: MediaTrackConstraints = { width: { ideal: 640 }, height: { ideal: 480 } };
const PROCESSING_KEY = "salon.audio";
const DEFAULT_PROCESSING: AudioProcessing = { noiseSuppression: true, echoCancellation: true };

/** The remembered processing switches; both on when nothing (or nothing readable) is stored. */
export function storedProcessing(
  storage: Pick<Storage, "getItem"> | undefined = localStore(),
): AudioProcessing {
  try {
    const raw = JSON.parse(storage?.getItem(PROCESSING_KEY) ?? "{}") as Record<string, unknown>;
    return {
      noiseSuppression: raw.noiseSuppression !== false,
      echoCancellation: raw.echoCancellation !== false,
    };
  } catch {
    return DEFAULT_PROCESSING;
  }
}

function localStore(): Storage | undefined {
  try {
    return globalThis.localStorage ?? undefined;
  } catch {
    return undefined; // a sandboxed frame may throw on the mere access
  }
}

function audioConstraints(processing: AudioProcessing): MediaTrackConstraints {
  return { echoCancellation: processing.echoCancellation, noiseSuppression: processing.noiseSuppression };
}

function problemOf(error: unknown): DeviceProblem {
  const name = error instanceof DOMException ? error.name : "";
  if (name === "NotAllowedError" || name === "SecurityError") return "denied";
  if (name === "NotFoundError" || name === "OverconstrainedError") return "missing";
  if (name === "NotReadableError" || name === "AbortError") return "busy";
  return "failed";
}

/**
 * Whether a missing device may be asked for again with `LocalMedia.retry()`: it failed
 * (blocked, busy, not found) and nothing is being asked right now. A mic or camera button
 * then retries instead of staying disabled for good.
 */
export function canRetry(state: LocalMediaState, kind: "audio" | "video"): boolean {
  const [track, problem] =
    kind === "audio" ? [state.audio, state.audioProblem] : [state.video, state.videoProblem];
  return track === null && problem !== null && !state.acquiring;
}

/** Ask `track` for `processing`; true when its settings now say so (or do not say). */
async function applied(track: MediaStreamTrack, processing: AudioProcessing): Promise<boolean> {
  if (typeof track.applyConstraints !== "function") return false;
  try {
    const base = typeof track.getConstraints === "function" ? track.getConstraints() : {};
    await track.applyConstraints({ ...base, ...audioConstraints(processing) });
  } catch {
    return false;
  }
  const settings: MediaTrackSettings = typeof track.getSettings === "function" ? track.getSettings() : {};
  return (Object.keys(processing) as (keyof AudioProcessing)[]).every(
    (key) => settings[key] === undefined || settings[key] === processing[key],
  );
}

/** The permission names the Permissions API uses for each kind (where it knows them). */
const PERMISSION = { audio: "microphone", video: "camera" } as const;

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
    processing: storedProcessing(),
  };
  private readonly onDeviceChange = () => void this.refreshDevices();
  private readonly watched: PermissionStatus[] = [];
  private stopped = false;
  private retrying = false;
  private processingQueue: Promise<void> = Promise.resolve();

  constructor(
    private readonly devices: MediaDevices | undefined = globalThis.navigator?.mediaDevices,
    private readonly permissions: Permissions | undefined = globalThis.navigator?.permissions,
  ) {
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
    const audioAsked = audioConstraints(this.current.processing);
    try {
      const stream = await this.devices.getUserMedia({ audio: audioAsked, video: VIDEO });
      audio = [stream.getAudioTracks()[0] ?? null, null];
      video = [stream.getVideoTracks()[0] ?? null, null];
    } catch {
      // One kind may be the problem: ask for each alone to learn which.
      audio = await this.one("audio");
      video = await this.one("video");
    }
    if (this.stopped) {
      audio[0]?.stop();
      video[0]?.stop();
      return;
    }
    this.publish(audio, video);
    await this.refreshDevices();
    void this.watchPermissions();
  }

  /**
   * Ask again for each device this side has no track for — after the person allowed the
   * camera or microphone in the browser's settings, or closed the app that held it. Tracks
   * already running are kept. Never throws; each kind that still fails keeps its problem.
   * The room's mic and camera buttons call this while their device is missing, so they are
   * never disabled for good; each asks for its own kind only (`only`), so pressing the camera
   * button never turns a microphone on.
   */
  async retry(only?: "audio" | "video"): Promise<void> {
    if (this.devices === undefined || this.stopped || this.retrying) return;
    const wantAudio = this.current.audio === null && only !== "video";
    const wantVideo = this.current.video === null && only !== "audio";
    if (!wantAudio && !wantVideo) return;
    this.retrying = true;
    this.update({ acquiring: true });
    try {
      let audio: [MediaStreamTrack | null, DeviceProblem | null] = [null, null];
      let video: [MediaStreamTrack | null, DeviceProblem | null] = [null, null];
      if (wantAudio && wantVideo) {
        try {
          // One question (one browser prompt) for both, as at the start.
          const stream = await this.devices.getUserMedia({
            audio: audioConstraints(this.current.processing),
            video: VIDEO,
          });
          audio = [stream.getAudioTracks()[0] ?? null, null];
          video = [stream.getVideoTracks()[0] ?? null, null];
        } catch {
          audio = await this.one("audio");
          video = await this.one("video");
        }
      } else if (wantAudio) audio = await this.one("audio");
      else video = await this.one("video");
      if (this.stopped) {
        audio[0]?.stop();
        video[0]?.stop();
        return;
      }
      const patch: Partial<LocalMediaState> = { acquiring: false };
      if (wantAudio) patch.audioProblem = audio[1];
      if (wantVideo) patch.videoProblem = video[1];
      this.setTracks(
        wantAudio ? audio[0] : this.current.audio,
        wantVideo ? video[0] : this.current.video,
        patch,
      );
      if (wantAudio && audio[0] !== null) this.events.emit("track", { kind: "audio", track: audio[0] });
      if (wantVideo && video[0] !== null) this.events.emit("track", { kind: "video", track: video[0] });
      await this.refreshDevices();
    } finally {
      this.retrying = false;
      if (this.current.acquiring) this.update({ acquiring: false });
    }
  }

  /**
   * Switch noise suppression or echo cancellation on the running microphone with
   * `applyConstraints` (Media Capture and Streams 4.3.8): the same track, no renegotiation.
   * Chromium accepts such a change but keeps the running source's processing (an `exact`
   * one it refuses with OverconstrainedError), so when the track's settings still differ the
   * microphone is reopened with the new processing and swapped in with `replaceTrack` —
   * still no renegotiation, a moment's gap in the sound. Remembered (localStorage) for every
   * later microphone. Resolves false when neither worked (the switch is still remembered).
   */
  setProcessing(change: Partial<AudioProcessing>): Promise<boolean> {
    const processing = { ...this.current.processing, ...change };
    this.update({ processing });
    try {
      localStore()?.setItem(PROCESSING_KEY, JSON.stringify(processing));
    } catch {
      // Private mode: the switch holds for this visit only.
    }
    // One change at a time: a quick second click waits for the first microphone to settle.
    const next = this.processingQueue.then(() => this.applyProcessing());
    this.processingQueue = next.then(
      () => undefined,
      () => undefined,
    );
    return next;
  }

  private async applyProcessing(): Promise<boolean> {
    const track = this.current.audio;
    if (track === null || this.stopped) return true;
    const processing = this.current.processing;
    if (await applied(track, processing)) return true;
    return this.reopenMic(processing);
  }

  /** A new microphone track with `processing`, sent in the old one's place. */
  private async reopenMic(processing: AudioProcessing): Promise<boolean> {
    const old = this.current.audio;
    if (old === null || this.devices === undefined) return false;
    const deviceId =
      (typeof old.getSettings === "function" ? old.getSettings().deviceId : "") || this.current.micId;
    // Chromium opens a device with one processing at a time: the old track must let go first.
    old.stop();
    let track: MediaStreamTrack | null = null;
    let problem: DeviceProblem | null = null;
    try {
      const audio = {
        ...audioConstraints(processing),
        ...(deviceId ? { deviceId: { exact: deviceId } } : {}),
      };
      const stream = await this.devices.getUserMedia({ audio });
      track = stream.getAudioTracks()[0] ?? null;
    } catch (error) {
      problem = problemOf(error);
    }
    if (this.stopped) {
      track?.stop();
      return false;
    }
    this.setTracks(track, this.current.video, {
      audioProblem: track === null ? (problem ?? "failed") : null,
    });
    this.events.emit("track", { kind: "audio", track });
    return track !== null;
  }

  /**
   * Where the browser tells of permission changes (Permissions API; Chromium and Firefox for
   * "camera" and "microphone"), a device that was blocked is asked for again as soon as the
   * person allows it in the site settings — without a click on "Try again".
   */
  private async watchPermissions(): Promise<void> {
    const permissions = this.permissions;
    if (permissions === undefined || typeof permissions.query !== "function") return;
    for (const kind of ["audio", "video"] as const) {
      const problem = kind === "audio" ? this.current.audioProblem : this.current.videoProblem;
      if (problem !== "denied") continue;
      let status: PermissionStatus;
      try {
        status = await permissions.query({ name: PERMISSION[kind] as PermissionName });
      } catch {
        continue; // a browser that does not know the name (Safari, older Firefox)
      }
      if (this.stopped) return;
      status.onchange = () => {
        if (status.state === "granted") void this.retry();
      };
      this.watched.push(status);
    }
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
    this.stopped = true;
    this.devices?.removeEventListener?.("devicechange", this.onDeviceChange);
    for (const status of this.watched.splice(0)) status.onchange = null;
    this.current.audio?.stop();
    this.current.video?.stop();
    this.current.screen?.stop();
    this.update({ audio: null, video: null, screen: null, preview: null });
  }

  private async one(kind: "audio" | "video"): Promise<[MediaStreamTrack | null, DeviceProblem | null]> {
    try {
      const constraints =
        kind === "audio" ? { audio: audioConstraints(this.current.processing) } : { video: VIDEO };
      const stream = await this.devices!.getUserMedia(constraints);
      return [stream.getTracks()[0] ?? null, null];
    } catch (error) {
      return [null, problemOf(error)];
    }
  }

  private async switchDevice(kind: "audio" | "video", deviceId: string): Promise<MediaStreamTrack | null> {
    if (this.devices === undefined) return null;
    const base = kind === "audio" ? audioConstraints(this.current.processing) : VIDEO;
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
