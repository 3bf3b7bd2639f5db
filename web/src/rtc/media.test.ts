import { afterEach, describe, expect, it, vi } from "vitest";
import { canRetry, LocalMedia, storedProcessing, type TrackChange } from "./media";

interface FakeTrack {
  kind: "audio" | "video";
  id: string;
  enabled: boolean;
  stopped: boolean;
  applied: MediaTrackConstraints[];
  constraints: MediaTrackConstraints;
  getSettings(): { deviceId: string };
  getConstraints(): MediaTrackConstraints;
  applyConstraints(c: MediaTrackConstraints): Promise<void>;
  stop(): void;
}

let made = 0;
function track(kind: "audio" | "video", constraints: MediaTrackConstraints = {}): FakeTrack {
  made += 1;
  const t: FakeTrack = {
    kind,
    id: `${kind}-${made}`,
    enabled: true,
    stopped: false,
    applied: [],
    constraints,
    getSettings: () => ({ deviceId: `${kind}-device` }),
    getConstraints: () => t.constraints,
    applyConstraints: async (c) => {
      t.applied.push(c);
      t.constraints = c;
    },
    stop: () => {
      t.stopped = true;
    },
  };
  return t;
}

const denied = () => new DOMException("Permission denied", "NotAllowedError");

/**
 * Devices whose answers the test sets: `allow.video = false` makes any request with video
 * fail with NotAllowedError, as a browser does for a blocked camera.
 */
function devices() {
  const allow = { audio: true, video: true };
  const asked: MediaStreamConstraints[] = [];
  const media = {
    getUserMedia: async (constraints: MediaStreamConstraints) => {
      asked.push(constraints);
      if ((constraints.audio && !allow.audio) || (constraints.video && !allow.video)) throw denied();
      const audio = constraints.audio ? [track("audio", constraints.audio as MediaTrackConstraints)] : [];
      const video = constraints.video ? [track("video")] : [];
      return {
        getAudioTracks: () => audio,
        getVideoTracks: () => video,
        getTracks: () => [...audio, ...video],
      };
    },
    enumerateDevices: async () => [],
  } as unknown as MediaDevices;
  return { allow, asked, media };
}

function tracksOf(local: LocalMedia): TrackChange[] {
  const changes: TrackChange[] = [];
  local.onTrack((change) => changes.push(change));
  return changes;
}

afterEach(() => {
  vi.unstubAllGlobals();
});

describe("LocalMedia.retry", () => {
  it("gets a camera that was blocked, keeps the running microphone, and sends the new track", async () => {
    const { allow, asked, media } = devices();
    allow.video = false;
    const local = new LocalMedia(media, undefined);
    await local.start();
    expect(local.state.videoProblem).toBe("denied");
    expect(local.state.video).toBeNull();
    const mic = local.state.audio;
    expect(mic).not.toBeNull();

    const changes = tracksOf(local);
    allow.video = true; // the person allowed the camera in the site settings
    asked.length = 0;
    await local.retry();
    expect(asked).toEqual([{ video: expect.any(Object) }]); // only the missing kind is asked for
    expect(local.state.video).not.toBeNull();
    expect(local.state.videoProblem).toBeNull();
    expect(local.state.audio).toBe(mic);
    expect(local.state.acquiring).toBe(false);
    expect(changes).toEqual([{ kind: "video", track: local.state.video }]);
  });

  it("is offered (canRetry) only for a failed kind, and not while asking", async () => {
    const { allow, media } = devices();
    allow.video = false;
    const local = new LocalMedia(media, undefined);
    expect(canRetry(local.state, "video")).toBe(false); // asking at the start
    await local.start();
    expect(canRetry(local.state, "video")).toBe(true);
    expect(canRetry(local.state, "audio")).toBe(false); // the microphone runs
    expect(canRetry({ ...local.state, acquiring: true }, "video")).toBe(false);
  });

  it("keeps the problem when the device is still blocked", async () => {
    const { allow, media } = devices();
    allow.video = false;
    const local = new LocalMedia(media, undefined);
    await local.start();
    const changes = tracksOf(local);
    await local.retry();
    expect(local.state.videoProblem).toBe("denied");
    expect(local.state.video).toBeNull();
    expect(local.state.acquiring).toBe(false);
    expect(changes).toEqual([]);
  });

  it("asks once for both when both were blocked", async () => {
    const { allow, asked, media } = devices();
    allow.audio = allow.video = false;
    const local = new LocalMedia(media, undefined);
    await local.start();
    expect([local.state.audioProblem, local.state.videoProblem]).toEqual(["denied", "denied"]);
    allow.audio = allow.video = true;
    asked.length = 0;
    await local.retry();
    expect(asked).toHaveLength(1);
    expect(asked[0]?.audio).toBeTruthy();
    expect(asked[0]?.video).toBeTruthy();
    expect(local.state.audio?.kind).toBe("audio");
    expect(local.state.video?.kind).toBe("video");
  });

  it("asks for one kind only when told (the room's camera button never opens the microphone)", async () => {
    const { allow, asked, media } = devices();
    allow.audio = allow.video = false;
    const local = new LocalMedia(media, undefined);
    await local.start();
    allow.audio = allow.video = true;
    asked.length = 0;
    const changes = tracksOf(local);
    await local.retry("video");
    expect(asked).toEqual([{ video: expect.any(Object) }]);
    expect(local.state.video?.kind).toBe("video");
    expect(local.state.audio).toBeNull();
    expect(local.state.audioProblem).toBe("denied"); // still to be asked for, by its own button
    expect(changes.map((c) => c.kind)).toEqual(["video"]);
    asked.length = 0;
    await local.retry("audio");
    expect(asked).toEqual([{ audio: expect.anything() }]);
    expect(local.state.audio?.kind).toBe("audio");
  });

  it("asks nothing when every device runs", async () => {
    const { asked, media } = devices();
    const local = new LocalMedia(media, undefined);
    await local.start();
    asked.length = 0;
    await local.retry();
    expect(asked).toEqual([]);
  });

  it("retries by itself when the browser says the camera is now allowed", async () => {
    const { allow, media } = devices();
    allow.video = false;
    const status = { state: "denied", onchange: null as null | (() => void) };
    const queried: string[] = [];
    const permissions = {
      query: async ({ name }: { name: string }) => {
        queried.push(name);
        return status;
      },
    } as unknown as Permissions;
    const local = new LocalMedia(media, permissions);
    await local.start();
    await vi.waitFor(() => expect(status.onchange).not.toBeNull());
    expect(queried).toEqual(["camera"]); // the microphone was not blocked
    allow.video = true;
    status.state = "granted";
    status.onchange?.();
    await vi.waitFor(() => expect(local.state.video).not.toBeNull());
    local.stop();
    expect(status.onchange).toBeNull();
  });
});

describe("LocalMedia.setProcessing", () => {
  it("applies the switch to the same microphone track, keeps its device, and remembers it", async () => {
    const saved = new Map<string, string>();
    vi.stubGlobal("localStorage", {
      getItem: (k: string) => saved.get(k) ?? null,
      setItem: (k: string, v: string) => saved.set(k, v),
    });
    const { media } = devices();
    const local = new LocalMedia(media, undefined);
    await local.start();
    const changes = tracksOf(local);
    const mic = local.state.audio as unknown as FakeTrack;
    mic.constraints = { ...mic.constraints, deviceId: { exact: "usb-mic" } };

    expect(await local.setProcessing({ noiseSuppression: false })).toBe(true);
    expect(local.state.audio).toBe(mic as unknown as MediaStreamTrack); // no new track
    expect(changes).toEqual([]); // so nothing to renegotiate or replace
    expect(mic.applied).toEqual([
      { deviceId: { exact: "usb-mic" }, noiseSuppression: false, echoCancellation: true },
    ]);
    expect(local.state.processing).toEqual({ noiseSuppression: false, echoCancellation: true });
    expect(JSON.parse(saved.get("salon.audio") ?? "")).toEqual({
      noiseSuppression: false,
      echoCancellation: true,
    });

    // The next visit asks for the microphone with the remembered switches.
    const next = new LocalMedia(devices().media, undefined);
    expect(next.state.processing.noiseSuppression).toBe(false);
    const again = devices();
    const later = new LocalMedia(again.media, undefined);
    await later.start();
    expect(again.asked[0]?.audio).toEqual({ noiseSuppression: false, echoCancellation: true });
  });

  it("reopens the microphone with the switch when the browser keeps the old processing", async () => {
    const { allow, asked, media } = devices();
    const local = new LocalMedia(media, undefined);
    await local.start();
    const changes = tracksOf(local);
    const mic = local.state.audio as unknown as FakeTrack;
    // As Chromium does: the change is accepted, the running source keeps its processing.
    mic.getSettings = () =>
      ({ deviceId: "usb-mic", noiseSuppression: true, echoCancellation: true }) as never;
    asked.length = 0;

    expect(await local.setProcessing({ noiseSuppression: false })).toBe(true);
    expect(mic.stopped).toBe(true); // let go first: a device has one processing at a time
    expect(asked).toEqual([
      { audio: { noiseSuppression: false, echoCancellation: true, deviceId: { exact: "usb-mic" } } },
    ]);
    const fresh = local.state.audio;
    expect(fresh).not.toBe(mic);
    expect(changes).toEqual([{ kind: "audio", track: fresh }]); // replaceTrack, no renegotiation

    // The microphone cannot be had again: said, and the room's button can retry.
    const again = fresh as unknown as FakeTrack;
    again.getSettings = () =>
      ({ deviceId: "usb-mic", noiseSuppression: false, echoCancellation: true }) as never;
    again.applyConstraints = async () => {
      throw new DOMException("no", "OverconstrainedError");
    };
    allow.audio = false;
    expect(await local.setProcessing({ echoCancellation: false })).toBe(false);
    expect(local.state.audio).toBeNull();
    expect(local.state.audioProblem).toBe("denied");
    expect(changes.at(-1)).toEqual({ kind: "audio", track: null });
    expect(canRetry(local.state, "audio")).toBe(true);
  });
});

describe("storedProcessing", () => {
  it("is on for both unless turned off, and survives garbage", () => {
    const store = (value: string | null) => ({ getItem: () => value });
    expect(storedProcessing(store(null))).toEqual({ noiseSuppression: true, echoCancellation: true });
    expect(storedProcessing(store('{"echoCancellation":false}'))).toEqual({
      noiseSuppression: true,
      echoCancellation: false,
    });
    expect(storedProcessing(store("{not json"))).toEqual({ noiseSuppression: true, echoCancellation: true });
  });
});
