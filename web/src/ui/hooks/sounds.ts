import { useEffect, useState } from "react";
import type { RoomSnapshot } from "../../room/session";
import { RoomSoundTracker, soundPrefs, sounds, type SoundKind, type SoundPrefs } from "../sounds";
import { useStore } from "./store";

/** This browser's sound choices, and a setter that saves them. */
export function useSoundPrefs(): [SoundPrefs, (kind: SoundKind, on: boolean) => void] {
  return [useStore(soundPrefs), (kind, on) => soundPrefs.set(kind, on)];
}

/**
 * Sounds for a room in progress (each only while it is turned on): someone joins or leaves
 * (not the list a join brings, nor a resume's reconciliation), the first chat message while
 * the chat is closed, someone raises a hand. `unread` is the chat's unread count
 * (`useUnread`, 0 while the chat panel is open).
 */
export function useRoomSounds(snap: RoomSnapshot, unread: number): void {
  const [tracker] = useState(() => new RoomSoundTracker());
  const { phase, selfId, members, hands, reconnecting } = snap;
  useEffect(() => {
    const heard = tracker.observe(
      { phase, selfId, memberIds: members.map((m) => m.id), hands, unread, reconnecting },
      performance.now(),
    );
    for (const kind of heard) sounds.play(kind);
  }, [tracker, phase, selfId, members, hands, unread, reconnecting]);
}
