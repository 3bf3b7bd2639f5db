import { useEffect, useState, useSyncExternalStore } from "react";
import { LevelMeter } from "../../rtc/level";
import { LocalMedia, type LocalMediaState } from "../../rtc/media";

export interface LevelSource {
  read(): number;
}

/** Own a LocalMedia for the life of the component: devices are asked for on mount. */
export function useLocalMedia(): [LocalMedia, LocalMediaState] {
  const [media] = useState(() => new LocalMedia());
  useEffect(() => {
    void media.start();
    return () => media.stop();
  }, [media]);
  const state = useSyncExternalStore(
    (handler) => media.onChange(handler),
    () => media.state,
  );
  return [media, state];
}

/** Poll a level source ten times a second; 0 when there is nothing to measure. */
export function usePolledLevel(source: LevelSource | null): number {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (source === null) return;
    const timer = setInterval(() => setLevel(source.read()), 100);
    return () => clearInterval(timer);
  }, [source]);
  return source === null ? 0 : level;
}

/** The level of a local microphone track, from a Web Audio meter. */
export function useTrackLevel(track: MediaStreamTrack | null): number {
  const [level, setLevel] = useState(0);
  useEffect(() => {
    if (track === null || typeof AudioContext === "undefined") return;
    const meter = new LevelMeter(track);
    const timer = setInterval(() => setLevel(meter.read()), 100);
    return () => {
      clearInterval(timer);
      meter.close();
    };
  }, [track]);
  return track === null ? 0 : level;
}

/** Subscribe to a LocalMedia someone else owns. */
export function useLocalMediaState(media: LocalMedia): LocalMediaState {
  return useSyncExternalStore(
    (handler) => media.onChange(handler),
    () => media.state,
  );
}
