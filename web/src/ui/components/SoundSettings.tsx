import { useId } from "react";
import { useSoundPrefs } from "../hooks/sounds";
import { SOUND_KINDS, sounds, type SoundKind } from "../sounds";

const LABELS: Record<SoundKind, string> = {
  join: "Someone joins",
  leave: "Someone leaves",
  chat: "A new chat message while the chat is closed",
  hand: "Someone raises a hand",
  ringtone: "Ringtone for an incoming call",
};

/**
 * Switches for each sound (`sound-join`, `sound-leave`, `sound-chat`, `sound-hand`,
 * `sound-ringtone`), remembered in this browser. Turning one on plays it once, so the person
 * knows what it sounds like.
 */
export function SoundSettings() {
  const [prefs, setPref] = useSoundPrefs();
  const id = useId();
  return (
    <fieldset className="sound-settings" data-testid="sound-settings">
      <legend className="h6">Sounds</legend>
      {SOUND_KINDS.map((kind) => (
        <div key={kind} className="form-check form-switch">
          <input
            id={`${id}-${kind}`}
            type="checkbox"
            role="switch"
            className="form-check-input"
            data-testid={`sound-${kind}`}
            checked={prefs[kind]}
            onChange={(e) => {
              setPref(kind, e.target.checked);
              if (e.target.checked) sounds.play(kind);
            }}
          />
          <label htmlFor={`${id}-${kind}`} className="form-check-label">
            {LABELS[kind]}
          </label>
        </div>
      ))}
    </fieldset>
  );
}
