import { useCallback, useEffect, useRef, useState } from "react";
import { shortcutFor, type RoomAction } from "../shortcuts";

/** What the room does for each shortcut; a missing handler turns that shortcut off. */
export type ShortcutHandlers = Partial<Record<RoomAction, () => void>>;

/** The dialogs the shortcuts open, to render as `<ShortcutHelp>` and `<LeaveConfirm>`. */
export interface RoomShortcuts {
  /** The shortcut help ("?") is open. */
  readonly helpOpen: boolean;
  /** Open the help, e.g. from a "Keyboard shortcuts" button (ControlBar `onHelp`). */
  readonly openHelp: () => void;
  readonly closeHelp: () => void;
  /** Shift+L was pressed: "Leave the meeting?" is asked. */
  readonly leaveAsked: boolean;
  /** The person confirmed: close the question and run the `leave` handler. */
  readonly confirmLeave: () => void;
  /** The person stays. */
  readonly cancelLeave: () => void;
}

/** The help dialog carries this attribute; any other open modal silences the shortcuts. */
export const SHORTCUT_HELP_ATTRIBUTE = "data-shortcut-help";

const OTHER_DIALOG = `dialog[open]:not([${SHORTCUT_HELP_ATTRIBUTE}]), [aria-modal="true"]:not([${SHORTCUT_HELP_ATTRIBUTE}])`;

/**
 * The room's keyboard shortcuts (see ui/shortcuts.ts): M microphone, V camera, C chat,
 * P participants, H hand, S screen, ? help, Shift+L leave (asked first), Esc closes the help.
 * Listens on `window` while mounted and `enabled`; never while typing or while another dialog
 * (an incoming call, the leave question) is open. Handlers may change on every render.
 *
 * ```tsx
 * const keys = useRoomShortcuts({ mic: toggleMic, camera: toggleCamera, chat: () => toggle("chat"),
 *   people: () => toggle("people"), hand: toggleHand, screen: toggleScreen, leave: onLeave });
 * <ShortcutHelp open={keys.helpOpen} onClose={keys.closeHelp} />
 * <LeaveConfirm open={keys.leaveAsked} onLeave={keys.confirmLeave} onStay={keys.cancelLeave} />
 * ```
 */
export function useRoomShortcuts(handlers: ShortcutHandlers, enabled = true): RoomShortcuts {
  const [helpOpen, setHelpOpen] = useState(false);
  const [leaveAsked, setLeaveAsked] = useState(false);
  const latest = useRef(handlers);
  useEffect(() => {
    latest.current = handlers;
  });

  useEffect(() => {
    if (!enabled) return;
    const onKey = (event: KeyboardEvent) => {
      const otherDialogOpen = document.querySelector(OTHER_DIALOG) !== null;
      const action = shortcutFor(event, { helpOpen, otherDialogOpen });
      if (action === null) return;
      const handlers = latest.current;
      if (action === "help") setHelpOpen(true);
      else if (action === "closeHelp") setHelpOpen(false);
      else if (action === "leave") {
        if (handlers.leave === undefined) return;
        setHelpOpen(false);
        setLeaveAsked(true);
      } else {
        const handler = handlers[action];
        if (handler === undefined) return;
        handler();
      }
      event.preventDefault(); // the letter is typed nowhere; "?" starts no browser search
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [enabled, helpOpen]);

  const openHelp = useCallback(() => setHelpOpen(true), []);
  const closeHelp = useCallback(() => setHelpOpen(false), []);
  const cancelLeave = useCallback(() => setLeaveAsked(false), []);
  const confirmLeave = useCallback(() => {
    setLeaveAsked(false);
    latest.current.leave?.();
  }, []);
  return { helpOpen, openHelp, closeHelp, leaveAsked, confirmLeave, cancelLeave };
}
