import type { CSSProperties } from "react";
import { REACTIONS, type ShownReaction } from "../../room/reactions";
import "../styles/reactions.css";

interface Props {
  /** `snap.reactions`: what is on screen now (the session removes each after a few seconds). */
  reactions: readonly ShownReaction[];
  /** Names as shown ("Sam (2)") by member id; this side's own id may be in it too. */
  labels: ReadonlyMap<string, string>;
  /** This side's id (`snap.selfId`): its own reactions read "You: clap". */
  selfId?: string;
}

/**
 * Reactions floating up over the stage, each with who sent it. Place it inside the stage's
 * positioned box: it covers it (`position: absolute; inset: 0`) without taking clicks. It is
 * a polite live region, so a screen reader hears "Sam: thumbs up"; with reduced motion the
 * reactions fade in place instead of floating.
 */
export function ReactionOverlay({ reactions, labels, selfId }: Props) {
  return (
    <div className="reaction-overlay" aria-live="polite" data-testid="reactions">
      {reactions.map((r) => {
        const mine = r.from === selfId;
        const label = labels.get(r.from) ?? (mine ? "You" : "Someone");
        const { emoji, label: words } = REACTIONS[r.reaction];
        return (
          <div
            key={r.key}
            className="reaction"
            data-testid="reaction"
            data-reaction={r.reaction}
            data-from={label}
            style={{ "--reaction-x": `${lane(r.key)}%` } as CSSProperties}
          >
            <span className="reaction-emoji" aria-hidden="true">
              {emoji}
            </span>
            <span className="reaction-name" aria-hidden="true">
              {mine ? "You" : label}
            </span>
            <span className="visually-hidden">
              {mine ? "You" : label}: {words.toLowerCase()}
            </span>
          </div>
        );
      })}
    </div>
  );
}

/** Where across the stage (percent) a reaction rises: spread out, the same on every render. */
function lane(key: number): number {
  return 10 + ((key * 37) % 80);
}
