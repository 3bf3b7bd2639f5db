import { useEffect, useRef, useState } from "react";
import { LevelMeter } from "../../rtc/level";
import {
  LOCAL_TUNING,
  RemoteSpeakers,
  sameSpeakers,
  SpeakerTracker,
  type Listened,
  type SpeakerState,
} from "../../room/speaker";

/** How often levels are read (ms): often enough to catch short sounds between pauses. */
const POLL_MS = 50;
const NOBODY: SpeakerState = { speaking: new Set(), active: null };

/**
 * Who speaks, and the active speaker among the others: remote members from the audio this
 * side receives (`level(id)`, RTP levels) or, in a room on the SFU, from what the SFU hears
 * (`talking()`, null in a mesh room); this side from its own microphone track. Re-renders
 * only when the state changes, not at every sample.
 */
export function useSpeakers(
  level: (id: string) => number,
  talking: () => ReadonlySet<string> | null,
  members: readonly Listened[],
  selfId: string,
  ownTrack: MediaStreamTrack | null,
): SpeakerState {
  const [state, setState] = useState<SpeakerState>(NOBODY);
  const latest = useRef({ level, talking, members });
  const meter = useRef<LevelMeter | null>(null);

  useEffect(() => {
    latest.current = { level, talking, members };
  }, [level, talking, members]);

  useEffect(() => {
    if (ownTrack === null || typeof AudioContext === "undefined") return;
    const own = new LevelMeter(ownTrack);
    meter.current = own;
    return () => {
      meter.current = null;
      own.close();
    };
  }, [ownTrack]);

  useEffect(() => {
    const remote = new RemoteSpeakers();
    const local = new SpeakerTracker(LOCAL_TUNING);
    let shown = NOBODY;
    const timer = setInterval(() => {
      const now = performance.now();
      const { level: read, talking, members: present } = latest.current;
      const heard = remote.update(present, { level: read, talking: talking() }, now);
      const own = local.update(new Map([[selfId, meter.current?.read() ?? 0]]), now);
      const next = { speaking: new Set([...heard.speaking, ...own.speaking]), active: heard.active };
      if (sameSpeakers(next, shown)) return;
      shown = next;
      setState(next);
    }, POLL_MS);
    return () => clearInterval(timer);
  }, [selfId]);

  return state;
}
